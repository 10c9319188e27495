// multiprocessing/shared_memory.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/shared_memory.py (the POSIX branch)
// and Modules/_multiprocessing/posixshmem.c; see shared_memory.hpp.
#include "multiprocessing/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/resource_tracker.hpp"

namespace multiprocessing::shared_memory {

namespace {

/// Python: `_SHM_NAME_PREFIX` ("/psm_") and `_SHM_SAFE_NAME_LENGTH` (14: FreeBSD,
/// and perhaps other BSDs, limit names to 14 characters).
constexpr const char* SHM_NAME_PREFIX = "/psm_";
constexpr std::size_t SHM_SAFE_NAME_LENGTH = 14;

/// Python: `_make_filename()`: the prefix and secrets.token_hex(4), "/psm_0123abcd".
std::string make_random_filename() {
  std::size_t nbytes = (SHM_SAFE_NAME_LENGTH - std::strlen(SHM_NAME_PREFIX)) / 2;
  static const char hex[] = "0123456789abcdef";
  std::string name = SHM_NAME_PREFIX;
  for (unsigned char c : os::urandom(nbytes)) {
    name += hex[c >> 4];
    name += hex[c & 15];
  }
  return name;
}

}  // namespace

std::function<std::string()> _make_filename = make_random_filename;

// ================================================================ SharedMemory

SharedMemory::SharedMemory(std::optional<std::string> name, bool create, std::int64_t size) {
  if (!(size >= 0)) throw ValueError("'size' must be a positive integer");
  int flags = O_RDWR;
  if (create) {
    flags = O_CREAT | O_EXCL | O_RDWR;
    if (size == 0) throw ValueError("'size' must be a positive number different from zero");
  }
  if (!name && !(flags & O_EXCL)) throw ValueError("'name' can only be None if create=True");
  const mode_t mode = 0600;  // Python: _mode: only this user may attach

  // shm_open is open() on /dev/shm/<name>; glibc adds O_CLOEXEC (and
  // O_NOFOLLOW) itself, so the fd does not leak into programs we exec.
  if (!name) {
    // O_EXCL makes a name collision an error rather than a shared block; try
    // another random name until one is free.
    for (;;) {
      std::string candidate = _make_filename();
      fd_ = ::shm_open(candidate.c_str(), flags, mode);
      if (fd_ >= 0) {
        name_ = candidate;
        break;
      }
      if (errno != EEXIST) raise_os_error("shm_open", errno);
    }
  } else {
    std::string full = "/" + *name;  // Python: _prepend_leading_slash
    fd_ = ::shm_open(full.c_str(), flags, mode);
    if (fd_ < 0) raise_os_error("shm_open", errno);
    name_ = full;
  }

  try {
    if (create && size) {
      // ftruncate gives the new (empty) file its size; its pages are not
      // allocated yet.
      if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) raise_os_error("ftruncate", errno);
      // posix_fallocate allocates them now.  Without it, a size that tmpfs
      // cannot hold succeeds here and the program dies of SIGBUS at the first
      // touch of a page it cannot get; with it, creation fails with ENOSPC.
      // (It returns the error number instead of setting errno.)
      int err;
      do {
        err = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
      } while (err == EINTR);
      if (err != 0) raise_os_error("posix_fallocate", err);
    }
    // fstat: attaching, the block's size is its file's size, whatever the
    // caller passed.
    struct stat stats {};
    if (::fstat(fd_, &stats) != 0) raise_os_error("fstat", errno);
    size_ = static_cast<std::size_t>(stats.st_size);
    // Python's mmap.mmap(fd, 0) refuses an empty file with this text.
    if (size_ == 0) throw ValueError("cannot mmap an empty file");
    // MAP_SHARED: writes go to the shared pages, seen by every process that
    // maps the same name (MAP_PRIVATE would give this process a copy).
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) raise_os_error("mmap", errno);
    data_ = static_cast<unsigned char*>(p);

    // Python registers every SharedMemory, attached ones too; then the
    // tracker of a process that merely attached unlinks the block when that
    // process exits, under the feet of its creator (bpo-39959, gh-82300).
    // The port registers only the blocks it creates.
    if (create) resource_tracker::register_(name_, "shared_memory");
  } catch (...) {
    // Python: `except OSError: self.unlink(); raise`.  Only a block made
    // here is unlinked: an attach that failed must not remove another
    // process's block.
    close();
    if (create) ::shm_unlink(name_.c_str());
    throw;
  }
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {
  other.name_.clear();
}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    close();
    name_ = std::exchange(other.name_, std::string());
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SharedMemory::~SharedMemory() { close(); }

std::string SharedMemory::name() const {
  // Python: the name property drops the leading '/' that POSIX needs.
  return !name_.empty() && name_[0] == '/' ? name_.substr(1) : name_;
}

std::string SharedMemory::repr() const {
  return "SharedMemory(" + str_repr(name()) + ", size=" + std::to_string(size_) + ")";
}

void SharedMemory::close() {
  // munmap: this process stops seeing the block; other mappings are untouched.
  if (data_ != nullptr) {
    ::munmap(data_, size_);
    data_ = nullptr;
  }
  // The mapping keeps the block alive by itself; the fd is no longer needed.
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void SharedMemory::unlink() {
  if (name_.empty()) return;
  // shm_unlink removes /dev/shm/<name>: no new process can attach, and the
  // memory is freed when the last mapping goes.
  if (::shm_unlink(name_.c_str()) != 0) raise_os_error("shm_unlink", errno);
  resource_tracker::unregister(name_, "shared_memory");
}

// ================================================================ ShareableList

namespace {

constexpr std::size_t ALIGNMENT = 8;  // Python: _alignment

/// Python: `_back_transforms_mapping`'s keys.
enum BackTransform : signed char { VALUE = 0, STR = 1, BYTES = 2, NONE = 3 };

/// Python: `_extract_recreation_code(value)`.
BackTransform recreation_code(const Object& value) {
  const Object::Variant& v = value.variant();
  if (std::holds_alternative<std::string>(v)) return STR;
  if (std::holds_alternative<Bytes>(v)) return BYTES;
  if (std::holds_alternative<None>(v)) return NONE;
  return VALUE;
}

/// The octets a str or bytes item stores (str as UTF-8, Python's `_encoding`).
const std::string* text_of(const Object& value) {
  if (const auto* s = std::get_if<std::string>(&value.variant())) return s;
  if (const auto* b = std::get_if<Bytes>(&value.variant())) return &b->data;
  return nullptr;
}

/// Python: `_types_mapping[type(value)]` for the fixed-size types.
std::string fixed_format(const Object& value) {
  const Object::Variant& v = value.variant();
  if (std::holds_alternative<std::int64_t>(v)) return "q";
  if (std::holds_alternative<double>(v)) return "d";
  if (std::holds_alternative<bool>(v)) return "xxxxxxx?";
  if (std::holds_alternative<None>(v)) return "xxxxxx?x";
  // Python fails the dict lookup with KeyError: <class 'list'>.
  throw TypeError("ShareableList cannot hold a value of type " + value.type_name());
}

/// Python: struct.pack_into(fmt, buf, offset, value), for the formats a
/// ShareableList uses: 'x' pads with a zero byte, '?' a bool, 'q' an int64,
/// 'd' a double (native byte order, as Python's default '@'), "<n>s" n octets
/// padded with zeros.
void pack_into(const std::string& fmt, std::span<unsigned char> buf, std::size_t offset, const Object& value) {
  std::size_t pos = offset;
  std::size_t i = 0;
  while (i < fmt.size()) {
    std::size_t count = 0;
    bool has_count = false;
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
      count = count * 10 + static_cast<std::size_t>(fmt[i++] - '0');
      has_count = true;
    }
    char code = fmt[i++];
    if (code == 'x') {
      buf[pos++] = 0;
    } else if (code == '?') {
      // None is packed as False: its slot holds no information but its format.
      const bool* b = std::get_if<bool>(&value.variant());
      buf[pos++] = b != nullptr && *b ? 1 : 0;
    } else if (code == 'q') {
      std::int64_t q = std::get<std::int64_t>(value.variant());
      std::memcpy(&buf[pos], &q, sizeof q);
      pos += sizeof q;
    } else if (code == 'd') {
      double d = std::get<double>(value.variant());
      std::memcpy(&buf[pos], &d, sizeof d);
      pos += sizeof d;
    } else if (code == 's') {
      std::size_t n = has_count ? count : 1;
      const std::string& octets = *text_of(value);
      std::size_t copy = std::min(n, octets.size());
      std::memcpy(&buf[pos], octets.data(), copy);
      std::memset(&buf[pos + copy], 0, n - copy);
      pos += n;
    } else {
      throw ValueError(std::string("bad char in struct format: ") + code);
    }
  }
}

/// Python: struct.unpack_from(fmt, buf, offset)[0] for one-value formats.
Object unpack_from(const std::string& fmt, std::span<const unsigned char> buf, std::size_t offset) {
  std::size_t pos = offset;
  std::size_t i = 0;
  Object result;
  while (i < fmt.size()) {
    std::size_t count = 0;
    bool has_count = false;
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
      count = count * 10 + static_cast<std::size_t>(fmt[i++] - '0');
      has_count = true;
    }
    if (i == fmt.size()) throw ValueError("repeat count given without format specifier");
    char code = fmt[i++];
    std::size_t width = code == 's' ? (has_count ? count : 1) : code == 'q' || code == 'd' ? 8 : 1;
    if (pos + width > buf.size()) throw ValueError("unpack_from requires a larger buffer");
    if (code == 'x') {
    } else if (code == '?') {
      result = Object(buf[pos] != 0);
    } else if (code == 'q') {
      std::int64_t q;
      std::memcpy(&q, &buf[pos], sizeof q);
      result = Object(q);
    } else if (code == 'd') {
      double d;
      std::memcpy(&d, &buf[pos], sizeof d);
      result = Object(d);
    } else if (code == 's') {
      result = Object(Bytes(std::string(reinterpret_cast<const char*>(&buf[pos]), width)));
    } else {
      throw ValueError(std::string("bad char in struct format: ") + code);
    }
    pos += width;
  }
  return result;
}

/// Python: `bytes.rstrip(b'\\x00')`: drop the NUL octets that pad a slot.
std::string rstrip_nul(std::string s) {
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

std::int64_t read_q(std::span<const unsigned char> buf, std::size_t offset) {
  if (offset + 8 > buf.size()) throw ValueError("unpack_from requires a larger buffer");
  std::int64_t q;
  std::memcpy(&q, &buf[offset], sizeof q);
  return q;
}

void write_q(std::span<unsigned char> buf, std::size_t offset, std::int64_t q) {
  std::memcpy(&buf[offset], &q, sizeof q);
}

/// Python: value.encode() for 8s: the format text, zero-padded to 8 octets.
void write_8s(std::span<unsigned char> buf, std::size_t offset, const std::string& text) {
  pack_into("8s", buf, offset, Object(Bytes(text)));
}

}  // namespace

ShareableList::ShareableList(const std::vector<Object>& sequence, std::optional<std::string> name)
    : shm_([&] {
        // Python: the formats, offsets and requested size, computed before
        // the block exists so that it can be made at the right size.
        std::size_t data_size = 0;
        for (const Object& item : sequence) {
          if (const std::string* octets = text_of(item)) {
            // Python sizes a str slot by its length in characters, and then
            // silently truncates a non-ASCII str; the port counts UTF-8 octets.
            data_size += ALIGNMENT * (octets->size() / ALIGNMENT + 1);
          } else {
            fixed_format(item);  // refuse unsupported types before creating
            data_size += ALIGNMENT;
          }
        }
        std::size_t n = sequence.size();
        // Python: struct.calcsize("q" + "q"*(N+1) + formats + "8s"*N + "b"*N).
        std::size_t requested_size = 8 + 8 * (n + 1) + data_size + 8 * n + n;
        return SharedMemory(std::move(name), /*create=*/true, static_cast<std::int64_t>(requested_size));
      }()) {
  std::vector<std::string> formats;
  for (const Object& item : sequence) {
    if (const std::string* octets = text_of(item)) {
      formats.push_back(std::to_string(ALIGNMENT * (octets->size() / ALIGNMENT + 1)) + "s");
    } else {
      formats.push_back(fixed_format(item));
    }
  }
  for (const std::string& fmt : formats) {
    // Python: assert sum(len(fmt) <= 8 for fmt in _formats) == self._list_len
    if (fmt.size() > 8) {
      shm_.close();
      shm_.unlink();
      throw AssertionError("a str/bytes item of " + fmt + " octets does not fit in a ShareableList");
    }
  }
  list_len_ = formats.size();
  allocated_offsets_ = {0};
  std::int64_t offset = 0;
  for (const std::string& fmt : formats) {
    offset += fmt.back() != 's' ? static_cast<std::int64_t>(ALIGNMENT) : std::stoll(fmt.substr(0, fmt.size() - 1));
    allocated_offsets_.push_back(offset);
  }

  std::span<unsigned char> buf = shm_.buf();
  write_q(buf, 0, static_cast<std::int64_t>(list_len_));
  for (std::size_t i = 0; i < allocated_offsets_.size(); ++i) write_q(buf, 8 * (i + 1), allocated_offsets_[i]);
  for (std::size_t i = 0; i < list_len_; ++i) {
    pack_into(formats[i], buf, _offset_data_start() + static_cast<std::size_t>(allocated_offsets_[i]), sequence[i]);
  }
  for (std::size_t i = 0; i < list_len_; ++i) write_8s(buf, _offset_packing_formats() + i * 8, formats[i]);
  for (std::size_t i = 0; i < list_len_; ++i) {
    buf[_offset_back_transform_codes() + i] = static_cast<unsigned char>(recreation_code(sequence[i]));
  }
}

ShareableList::ShareableList(SharedMemory shm) : shm_(std::move(shm)) {
  // Python: `_list_len = len(self)`, then the N + 1 offsets after it.
  list_len_ = size();
  for (std::size_t i = 0; i <= list_len_; ++i) allocated_offsets_.push_back(read_q(shm_.buf(), 8 * (i + 1)));
}

ShareableList ShareableList::attach(const std::string& name) { return ShareableList(SharedMemory(name)); }

std::size_t ShareableList::_offset_data_start() const {
  // 8 bytes for the list length, (N + 1) * 8 bytes for the element offsets.
  return (list_len_ + 2) * 8;
}

std::size_t ShareableList::_offset_packing_formats() const {
  return _offset_data_start() + static_cast<std::size_t>(allocated_offsets_.back());
}

std::size_t ShareableList::_offset_back_transform_codes() const {
  return _offset_packing_formats() + list_len_ * 8;
}

std::string ShareableList::_get_packing_format(std::int64_t position) const {
  if (position < 0) position += static_cast<std::int64_t>(list_len_);
  if (position < 0 || position >= static_cast<std::int64_t>(list_len_)) {
    throw IndexError("Requested position out of range.");
  }
  Object v = unpack_from("8s", shm_.buf(), _offset_packing_formats() + static_cast<std::size_t>(position) * 8);
  return rstrip_nul(std::get<Bytes>(v.variant()).data);
}

Object ShareableList::operator[](std::int64_t position) const {
  if (position < 0) position += static_cast<std::int64_t>(list_len_);
  if (position < 0 || position >= static_cast<std::int64_t>(list_len_)) throw IndexError("index out of range");
  std::size_t offset = _offset_data_start() + static_cast<std::size_t>(allocated_offsets_[position]);
  Object v = unpack_from(_get_packing_format(position), shm_.buf(), offset);
  // Python: _get_back_transform(position)(v).
  auto code = static_cast<signed char>(shm_.buf()[_offset_back_transform_codes() + static_cast<std::size_t>(position)]);
  switch (code) {
    case VALUE:
      return v;
    case STR:
      return Object(rstrip_nul(std::get<Bytes>(v.variant()).data));
    case BYTES:
      return Object(Bytes(rstrip_nul(std::get<Bytes>(v.variant()).data)));
    case NONE:
      return Object();
    default:
      // Python: KeyError from the _back_transforms_mapping lookup.
      throw ValueError("unknown back transform code " + std::to_string(code));
  }
}

void ShareableList::set(std::int64_t position, const Object& value) {
  if (position < 0) position += static_cast<std::int64_t>(list_len_);
  if (position < 0 || position >= static_cast<std::int64_t>(list_len_)) {
    throw IndexError("assignment index out of range");
  }
  std::int64_t item_offset = allocated_offsets_[position];
  std::size_t offset = _offset_data_start() + static_cast<std::size_t>(item_offset);
  std::string current_format = _get_packing_format(position);

  std::string new_format;
  if (const std::string* octets = text_of(value)) {
    std::int64_t allocated_length = allocated_offsets_[position + 1] - item_offset;
    if (static_cast<std::int64_t>(octets->size()) > allocated_length) {
      throw ValueError("bytes/str item exceeds available storage");
    }
    new_format = current_format.back() == 's' ? current_format : std::to_string(allocated_length) + "s";
  } else {
    new_format = fixed_format(value);
  }
  // Python: _set_packing_format_and_transform, then pack the value.
  std::span<unsigned char> buf = shm_.buf();
  write_8s(buf, _offset_packing_formats() + static_cast<std::size_t>(position) * 8, new_format);
  buf[_offset_back_transform_codes() + static_cast<std::size_t>(position)] =
      static_cast<unsigned char>(recreation_code(value));
  pack_into(new_format, buf, offset, value);
}

std::size_t ShareableList::size() const { return static_cast<std::size_t>(read_q(shm_.buf(), 0)); }

std::vector<Object> ShareableList::items() const {
  std::vector<Object> result;
  for (std::size_t i = 0; i < list_len_; ++i) result.push_back((*this)[static_cast<std::int64_t>(i)]);
  return result;
}

std::size_t ShareableList::count(const Object& value) const {
  std::size_t n = 0;
  for (const Object& entry : items()) n += value == entry;
  return n;
}

std::size_t ShareableList::index(const Object& value) const {
  std::vector<Object> entries = items();
  for (std::size_t position = 0; position < entries.size(); ++position) {
    if (value == entries[position]) return position;
  }
  throw ValueError(value.repr() + " not in this container");
}

std::string ShareableList::format() const {
  std::string result;
  for (std::size_t i = 0; i < list_len_; ++i) result += _get_packing_format(static_cast<std::int64_t>(i));
  return result;
}

std::string ShareableList::repr() const {
  return "ShareableList(" + Object(items()).repr() + ", name=" + str_repr(shm_.name()) + ")";
}

namespace {
// The unpickler may name these (ForkingPickler's allow-list).
const bool shared_memory_globals_registered = [] {
  reduction::ForkingPickler::register_global("multiprocessing.shared_memory", "SharedMemory");
  reduction::ForkingPickler::register_global("multiprocessing.shared_memory", "ShareableList");
  return true;
}();
}  // namespace

}  // namespace multiprocessing::shared_memory
