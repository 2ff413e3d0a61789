#include "io/file_bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/limits.h"
#include "core/sanitizer.h"

namespace mae::io {

Bytes read_file_bytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    fail(path, ": cannot open: ", std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(path, ": is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {  // /dev/zero would never end
    ::close(fd);
    fail(path, ": not a regular file or a pipe (a device or socket)");
  }
  // Under AddressSanitizer read into an exact-size heap buffer, so that overruns are reported instead of reading a
  // mapping's zero tail.
  constexpr bool use_mmap = !kAddressSanitizer;
  if (use_mmap && S_ISREG(st.st_mode) && st.st_size > 0) {
    const size_t size = static_cast<size_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      ::close(fd);
      Bytes b;
      b.hold = std::shared_ptr<const void>(p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
      b.data = static_cast<const uint8_t*>(p);
      b.size = size;
      return b;
    }
  }
  auto buf = std::make_shared<std::vector<uint8_t>>();
  // A small regular file in one read of its size (+1 to see the end): zeroing a 1 MiB chunk per file dominated
  // the fuzzers' time.
  const size_t chunk = S_ISREG(st.st_mode) ? std::min<size_t>(size_t(st.st_size) + 1, 1 << 20) : 1 << 20;
  for (;;) {
    const size_t at = buf->size();
    buf->resize(at + chunk);
    const ssize_t got = ::read(fd, buf->data() + at, chunk);
    if (got < 0) {
      const int e = errno;
      buf->resize(at);
      if (e == EINTR) continue;
      ::close(fd);
      fail(path, ": read failed: ", std::strerror(e));
    }
    buf->resize(at + static_cast<size_t>(got));
    if (got == 0) break;
    if (buf->size() > limits::kStreamBytes) {
      ::close(fd);
      fail(path, ": more than the limit of ", limits::kStreamBytes, " bytes read from a pipe");
    }
  }
  ::close(fd);
  buf->shrink_to_fit();
  Bytes b;
  b.data = buf->data();
  b.size = buf->size();
  b.hold = std::shared_ptr<const void>(buf, buf->data());
  return b;
}

}  // namespace mae::io
