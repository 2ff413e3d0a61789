#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

namespace mae::io {

namespace {

std::string folder_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The temp file being written, for a signal handler that ends the process mid-write (async-signal-safe to read).
char g_tmp[4096];
volatile sig_atomic_t g_tmp_set = 0;
struct TempMark {
  explicit TempMark(const std::string& tmp) {
    if (tmp.size() >= sizeof g_tmp) return;
    std::memcpy(g_tmp, tmp.c_str(), tmp.size() + 1);
    g_tmp_set = 1;
  }
  ~TempMark() { g_tmp_set = 0; }
};

}  // namespace

const char* temp_file_in_progress() { return g_tmp_set ? g_tmp : nullptr; }

WriteError::WriteError(int e, const char* what_failed)
    : Error(detail::cat(what_failed, ": ", std::strerror(e))), err(e) {}

void write_all(FILE* f, const void* data, size_t n) {
  if (n == 0) return;
  errno = 0;
  if (std::fwrite(data, 1, n, f) != n) throw WriteError(errno ? errno : EIO);
}

void write_file_atomic(const std::string& path, const std::function<void(FILE*)>& body) {
  // Same folder as the target, so that rename() is atomic (same file system); the pid keeps concurrent processes
  // writing the same target from sharing a temp file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const TempMark mark(tmp);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    const int e = errno;
    fail(path, ": cannot create temporary file '", tmp, "': ", std::strerror(e));
  }
  auto abandon = [&] {
    if (f) std::fclose(f);
    f = nullptr;
    std::remove(tmp.c_str());
  };
  try {
    errno = 0;
    body(f);
    if (std::ferror(f)) throw WriteError(errno ? errno : EIO);
    // Buffered writes to a full disk only fail here.
    if (std::fflush(f) != 0) throw WriteError(errno);
    if (::fsync(::fileno(f)) != 0) throw WriteError(errno, "fsync failed");
    FILE* g = f;
    f = nullptr;
    if (std::fclose(g) != 0) throw WriteError(errno, "close failed");
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      const int e = errno;
      fail(path, ": cannot rename '", tmp, "' over it: ", std::strerror(e));
    }
  } catch (const WriteError& e) {
    abandon();
    fail(path, ": ", e.what());
  } catch (...) {
    abandon();
    throw;
  }
  // The rename is durable only once the folder's entry is on disk. The new file is already in place, so a failure
  // here is reported but cannot be undone. Some file systems refuse fsync on folders (EINVAL): nothing to do then.
  const std::string dir = folder_of(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // e.g. no read permission on the folder: the data itself is synced
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL && e != ENOTSUP)
    fail(path, ": written, but syncing folder '", dir, "' failed: ", std::strerror(e));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, [&](FILE* f) { write_all(f, bytes.data(), bytes.size()); });
}

void write_folder_atomic(const std::string& dir0, bool replace, const std::function<void(const std::string&)>& body) {
  namespace fs = std::filesystem;
  std::string dir = dir0;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();  // "out/" names the folder "out"
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(dir, ec));
  if (exists && !replace) fail(dir, ": already exists (give --force to replace it)");
  if (exists && !fs::is_directory(dir, ec)) fail(dir, ": exists and is not a folder");
  const std::string tmp = dir + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp, ec);  // a leftover of an earlier run with this pid
  if (!fs::create_directory(tmp, ec))
    fail(dir, ": cannot create temporary folder '", tmp, "': ", ec ? ec.message() : std::string("it exists"));
  try {
    body(tmp);
    if (exists) {
      const std::string old = dir + ".old." + std::to_string(::getpid());
      fs::rename(dir, old);
      try {
        fs::rename(tmp, dir);
      } catch (...) {
        fs::rename(old, dir, ec);  // put the old folder back
        throw;
      }
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp, dir);
    }
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    fail(dir, ": ", e.code().message());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace mae::io
