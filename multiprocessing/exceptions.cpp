// multiprocessing/exceptions.cpp
// Mirrors the exception classes of CPython 3.11 Lib/multiprocessing/context.py and
// the builtins the package raises; see exceptions.hpp.
#include "multiprocessing/exceptions.hpp"

#include <cxxabi.h>
#include <netdb.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <typeinfo>

namespace multiprocessing {

namespace {
std::string os_error_message(const std::string& call, int err) {
  // The same shape as Python's OSError.__str__: "[Errno 10] No child processes".
  return "[Errno " + std::to_string(err) + "] " + std::strerror(err) + " (" + call + ")";
}
}  // namespace

OSError::OSError(const std::string& call, int err)
    : Exception(os_error_message(call, err)), errno_(err), call_(call) {}

OSError::OSError(const std::string& message) : Exception(message), errno_(0) {}

gaierror::gaierror(int eai_code)
    : OSError("[Errno " + std::to_string(eai_code) + "] " + ::gai_strerror(eai_code), eai_code,
              "getaddrinfo") {}

void raise_os_error(const std::string& call, int err) {
  // Python: the errnomap that _PyExc_InitState builds (Objects/exceptions.c).
  switch (err) {
    case EAGAIN:  // == EWOULDBLOCK on Linux
    case EALREADY:
    case EINPROGRESS: throw BlockingIOError(call, err);
    case ECHILD: throw ChildProcessError(call, err);
    case EPIPE:
    case ESHUTDOWN: throw BrokenPipeError(call, err);
    case ECONNABORTED: throw ConnectionAbortedError(call, err);
    case ECONNREFUSED: throw ConnectionRefusedError(call, err);
    case ECONNRESET: throw ConnectionResetError(call, err);
    case EEXIST: throw FileExistsError(call, err);
    case ENOENT: throw FileNotFoundError(call, err);
    case EISDIR: throw IsADirectoryError(call, err);
    case ENOTDIR: throw NotADirectoryError(call, err);
    case EINTR: throw InterruptedError(call, err);
    case EACCES:
    case EPERM: throw PermissionError(call, err);
    case ESRCH: throw ProcessLookupError(call, err);
    case ETIMEDOUT: throw BuiltinTimeoutError(call, err);
    default: throw OSError(call, err);
  }
}

std::string exception_type_name(const std::exception& e) {
  if (auto* ours = dynamic_cast<const Exception*>(&e)) return ours->python_name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(typeid(e).name());
}

}  // namespace multiprocessing
