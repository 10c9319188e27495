// multiprocessing/exceptions.hpp
// Mirrors the exception classes of CPython 3.11 Lib/multiprocessing/context.py
// (ProcessError, BufferTooShort, TimeoutError, AuthenticationError) together with
// the Python builtins the package raises (ValueError, AssertionError, OSError, ...).
//
// What Python raises, the port throws, with the same class name and the same
// message text.  Every class answers python_name(), so an uncaught one can be
// reported the way Python reports it: "ValueError: process object is closed".
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

namespace multiprocessing {

/// Root of the port's exceptions.  Python: Exception.
class Exception : public std::runtime_error {
 public:
  explicit Exception(const std::string& message) : std::runtime_error(message) {}
  /// The Python class name, e.g. "ValueError".
  virtual const char* python_name() const noexcept { return "Exception"; }

  /// Python: `exc.__cause__` when it is a pool.RemoteTraceback: for an
  /// exception raised in another process and re-raised here (a Pool task's),
  /// the text that says where it was raised.  Empty otherwise.
  const std::string& remote_traceback() const noexcept {
    static const std::string none;
    return remote_traceback_ ? *remote_traceback_ : none;
  }
  void set_remote_traceback(std::string text) {
    remote_traceback_ = std::make_shared<const std::string>(std::move(text));
  }

 private:
  std::shared_ptr<const std::string> remote_traceback_;
};

/// Python: multiprocessing.ProcessError (context.py).
class ProcessError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "ProcessError"; }
};

/// Python: multiprocessing.BufferTooShort.  Carries the whole message that did
/// not fit, as Python's `e.args[0]` does.
class BufferTooShort : public ProcessError {
 public:
  explicit BufferTooShort(std::string message_bytes)
      : ProcessError("buffer too short for a message of " +
                     std::to_string(message_bytes.size()) + " bytes"),
        message_(std::move(message_bytes)) {}
  const char* python_name() const noexcept override { return "BufferTooShort"; }
  /// The complete message that was received.
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

/// Python: multiprocessing.TimeoutError (not the builtin TimeoutError).
class TimeoutError : public ProcessError {
 public:
  using ProcessError::ProcessError;
  const char* python_name() const noexcept override { return "TimeoutError"; }
};

/// Python: multiprocessing.AuthenticationError.
class AuthenticationError : public ProcessError {
 public:
  using ProcessError::ProcessError;
  const char* python_name() const noexcept override { return "AuthenticationError"; }
};

/// Python builtin ValueError.
class ValueError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "ValueError"; }
};

/// Python builtin TypeError.
class TypeError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "TypeError"; }
};

/// Python builtin IndexError: an index out of range (Array, ShareableList).
class IndexError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "IndexError"; }
};

/// Python builtin AttributeError: a name an object does not have (a manager's
/// referent asked for a method it does not expose, a Namespace's missing
/// attribute), or the state a method needs (terminate() before start():
/// `_popen` is None).
class AttributeError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "AttributeError"; }
};

/// Python builtin KeyError: a key that a dict does not hold.
class KeyError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "KeyError"; }
};

/// Python: builtins.StopIteration: an iterator is exhausted (a manager's Iterator).
class StopIteration : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "StopIteration"; }
};

/// Python builtin ZeroDivisionError.
class ZeroDivisionError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "ZeroDivisionError"; }
};

/// Python builtin OverflowError: a number too large for the C type behind it.
class OverflowError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "OverflowError"; }
};

/// Python builtin RuntimeError.
class RuntimeError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "RuntimeError"; }
};

/// Python: threading.BrokenBarrierError (a RuntimeError), raised by
/// Barrier::wait when the barrier is broken or reset while a party waits.
class BrokenBarrierError : public RuntimeError {
 public:
  BrokenBarrierError() : RuntimeError("") {}
  using RuntimeError::RuntimeError;
  const char* python_name() const noexcept override { return "BrokenBarrierError"; }
};

/// Python builtin NotImplementedError (a RuntimeError, as in Python).
class NotImplementedError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
  const char* python_name() const noexcept override { return "NotImplementedError"; }
};

/// Python builtin AssertionError: what a failed `assert` in the Python source
/// raises (`start()` twice, `join()` before `start()`, ...).
class AssertionError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "AssertionError"; }
};

/// Python builtin EOFError.
class EOFError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "EOFError"; }
};

/// Python builtin OSError: a failed system call.  what() reads like Python's
/// `[Errno 9] Bad file descriptor (close)`; errno_value() and call() give the parts.
class OSError : public Exception {
 public:
  /// \param call  the system call that failed ("fork", "pipe2", ...)
  /// \param err   the errno it left
  OSError(const std::string& call, int err);
  /// An OSError that no system call made, with Python's text: OSError("handle
  /// is closed"), OSError("bad message length").  errno_value() is 0, call() "".
  explicit OSError(const std::string& message);
  const char* python_name() const noexcept override { return "OSError"; }
  int errno_value() const noexcept { return errno_; }
  const std::string& call() const noexcept { return call_; }

 protected:
  /// A subclass's own text for an error number that is not an errno (gaierror).
  OSError(const std::string& message, int err, const std::string& call)
      : Exception(message), errno_(err), call_(call) {}

 private:
  int errno_;
  std::string call_;
};

// Python's OSError subclasses (PEP 3151), one per errno family.  The port throws
// them through raise_os_error, as CPython's PyErr_SetFromErrno picks the class.

/// Python builtin BlockingIOError (EAGAIN, EWOULDBLOCK, EALREADY, EINPROGRESS).
class BlockingIOError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "BlockingIOError"; }
};

/// Python builtin ChildProcessError (ECHILD): waitpid found no child.
class ChildProcessError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "ChildProcessError"; }
};

/// Python builtin ConnectionError: the base of the four below.
class ConnectionError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "ConnectionError"; }
};

/// Python builtin BrokenPipeError (EPIPE, ESHUTDOWN): writing to a closed peer.
class BrokenPipeError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
  const char* python_name() const noexcept override { return "BrokenPipeError"; }
};

/// Python builtin ConnectionAbortedError (ECONNABORTED).
class ConnectionAbortedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
  const char* python_name() const noexcept override { return "ConnectionAbortedError"; }
};

/// Python builtin ConnectionRefusedError (ECONNREFUSED): nobody listens there.
class ConnectionRefusedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
  const char* python_name() const noexcept override { return "ConnectionRefusedError"; }
};

/// Python builtin ConnectionResetError (ECONNRESET).
class ConnectionResetError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
  const char* python_name() const noexcept override { return "ConnectionResetError"; }
};

/// Python builtin FileExistsError (EEXIST): e.g. creating a shared memory
/// segment or a named semaphore under a name that is taken.
class FileExistsError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "FileExistsError"; }
};

/// Python builtin FileNotFoundError (ENOENT): e.g. attaching to a shared memory
/// segment that does not exist.
class FileNotFoundError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "FileNotFoundError"; }
};

/// Python builtin InterruptedError (EINTR): a call that a signal interrupted and
/// that is not retried.
class InterruptedError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "InterruptedError"; }
};

/// Python builtin IsADirectoryError (EISDIR).
class IsADirectoryError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "IsADirectoryError"; }
};

/// Python builtin NotADirectoryError (ENOTDIR).
class NotADirectoryError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "NotADirectoryError"; }
};

/// Python builtin PermissionError (EACCES, EPERM).
class PermissionError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "PermissionError"; }
};

/// Python builtin ProcessLookupError (ESRCH): kill found no process.
class ProcessLookupError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "ProcessLookupError"; }
};

/// Python's builtin TimeoutError (ETIMEDOUT), an OSError.  The C++ name differs
/// because `TimeoutError` here is multiprocessing.TimeoutError, a ProcessError,
/// as in Python where the two are different classes.
class BuiltinTimeoutError : public OSError {
 public:
  using OSError::OSError;
  const char* python_name() const noexcept override { return "TimeoutError"; }
};

/// Python: socket.gaierror, the OSError that name resolution raises:
/// "[Errno -2] Name or service not known".  errno_value() is getaddrinfo's
/// EAI_* code (negative), call() "getaddrinfo".
class gaierror : public OSError {
 public:
  explicit gaierror(int eai_code);
  const char* python_name() const noexcept override { return "socket.gaierror"; }
};

/// Throw the OSError subclass Python raises for this errno, as CPython's
/// PyErr_SetFromErrno picks it (Objects/exceptions.c, errnomap): the classes
/// above for their errnos, a plain OSError for the rest.  Every system call of
/// the port that fails with an errno reports it through here.
[[noreturn]] void raise_os_error(const std::string& call, int err);

/// Python's SystemExit: what `sys.exit(code)` raises.  Thrown from a process
/// target it sets the exit code exactly as Python's `_bootstrap` does:
///   SystemExit()            -> 0      (sys.exit() / sys.exit(None))
///   SystemExit(8)           -> 8      (an int; SystemExit(true) -> 1, false -> 0)
///   SystemExit("message")   -> 1, and "message" is written to stderr.
/// Like Python's, it does not derive from Exception (it is a BaseException),
/// so `catch (const multiprocessing::Exception&)` does not swallow it.
class SystemExit {
 public:
  SystemExit() = default;
  explicit SystemExit(int code) : has_int_(true), int_code_(code) {}
  explicit SystemExit(bool code) : has_int_(true), int_code_(code ? 1 : 0) {}
  explicit SystemExit(std::string message) : has_message_(true), message_(std::move(message)) {}
  explicit SystemExit(const char* message) : SystemExit(std::string(message)) {}

  bool code_is_none() const noexcept { return !has_int_ && !has_message_; }
  bool code_is_int() const noexcept { return has_int_; }
  int int_code() const noexcept { return int_code_; }
  const std::string& message() const noexcept { return message_; }

 private:
  bool has_int_ = false;
  int int_code_ = 0;
  bool has_message_ = false;
  std::string message_;
};

namespace queues {
/// Python: queue.Empty, raised by Queue.get(block=False) or a timed-out get().
/// (Python's message is empty: `raise Empty`.)
class Empty : public Exception {
 public:
  Empty() : Exception("") {}
  using Exception::Exception;
  const char* python_name() const noexcept override { return "Empty"; }
};
/// Python: queue.Full, raised by Queue.put(block=False) or a timed-out put().
class Full : public Exception {
 public:
  Full() : Exception("") {}
  using Exception::Exception;
  const char* python_name() const noexcept override { return "Full"; }
};
}  // namespace queues

namespace pool {
/// Python: pool.MaybeEncodingError: a task's result (or exception) could not
/// be pickled to travel back: "Error sending result: '<value>'. Reason: '<exc>'".
class MaybeEncodingError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "MaybeEncodingError"; }
};
/// A pool worker ended while it ran a task (killed by a signal, or exited):
/// that task's result fails with this error, which names the worker and its
/// exit code.  CPython has no such error: its pool waits for the lost result
/// forever (CPython issues 96062, bpo-22393).  The name is billiard's, the
/// pool library that forked CPython's to fix this.
class WorkerLostError : public ProcessError {
 public:
  using ProcessError::ProcessError;
  const char* python_name() const noexcept override { return "WorkerLostError"; }
};
}  // namespace pool

/// An exception rebuilt from another process whose class has no C++ twin in
/// this program (a C++ exception type of that program, such as
/// std::out_of_range or a class of its own): it keeps that class's name,
/// which python_name() answers, and its message.
class RemoteException : public Exception {
 public:
  RemoteException(std::string type_name, const std::string& message)
      : Exception(message), type_name_(std::move(type_name)) {}
  const char* python_name() const noexcept override { return type_name_.c_str(); }

 private:
  std::string type_name_;
};

/// The Python-style name of any exception: python_name() for the port's own,
/// the demangled C++ type for the rest ("std::runtime_error").
std::string exception_type_name(const std::exception& e);

}  // namespace multiprocessing
