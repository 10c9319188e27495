// multiprocessing/exceptions.cpp
// Mirrors the exception classes of CPython 3.11 Lib/multiprocessing/context.py and
// the builtins the package raises; see exceptions.hpp.
#include "multiprocessing/exceptions.hpp"

#include <cxxabi.h>

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

void raise_os_error(const std::string& call, int err) {
  if (err == ECHILD) throw ChildProcessError(call, err);
  if (err == ESRCH) throw ProcessLookupError(call, err);
  if (err == EEXIST) throw FileExistsError(call, err);
  if (err == ENOENT) throw FileNotFoundError(call, err);
  throw OSError(call, err);
}

std::string exception_type_name(const std::exception& e) {
  if (auto* ours = dynamic_cast<const Exception*>(&e)) return ours->python_name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(typeid(e).name());
}

}  // namespace multiprocessing
