#include "data/replace_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <unistd.h>

#include "core/error.h"

namespace mae {

void write_or_fail(FILE* f, const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f) != n) fail("write failed: ", std::strerror(errno));
}

void replace_file(const std::string& path, const std::function<void(FILE*)>& body) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot write ", path, ": ", std::strerror(errno));
  std::string why;
  try {
    body(f);
  } catch (const Error& e) {
    why = e.what();
  } catch (...) {
    std::fclose(f);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  const bool flushed = why.empty() && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (why.empty() && !flushed) why = std::string("write failed (disk full?): ") + std::strerror(errno);
  if (std::fclose(f) != 0 && why.empty()) why = std::string("close failed: ") + std::strerror(errno);
  std::error_code ec;
  if (why.empty()) {
    std::filesystem::rename(tmp, path, ec);
    if (ec) why = "rename failed: " + ec.message();
  }
  if (!why.empty()) {
    std::filesystem::remove(tmp, ec);
    fail("cannot write ", path, ": ", why);
  }
}

}  // namespace mae
