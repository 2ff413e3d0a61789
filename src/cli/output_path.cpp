#include <filesystem>

#include "cli/common.h"
#include "core/error.h"

namespace mae::cli {

void check_output_path(const std::string& path, bool force) {
  namespace fs = std::filesystem;
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();  // "out/" is the folder "out"
  std::error_code ec;
  const fs::path out(p);
  if (fs::exists(fs::symlink_status(out, ec)) && !force) fail(path, ": already exists (give --force to replace it)");
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec))
    fail(path, ": cannot write there: ", parent.string(), " is not an existing folder");
}

}  // namespace mae::cli
