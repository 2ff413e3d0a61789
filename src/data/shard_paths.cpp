#include "data/shard_paths.h"

#include <algorithm>
#include <filesystem>

#include <glob.h>

#include "core/error.h"
#include "core/limits.h"

namespace fs = std::filesystem;

namespace mae {

namespace {

// The alternatives of a brace body "a,b,{c,d}" (split at top-level commas) or "000..146" (a numeric range); empty
// when the body is neither (then the braces are literal, as in bash).
std::vector<std::string> alternatives(const std::string& body, const std::string& pattern) {
  std::vector<std::string> alts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < body.size(); i++) {
    if (body[i] == '{') depth++;
    if (body[i] == '}') depth--;
    if (body[i] == ',' && depth == 0) alts.push_back(body.substr(start, i - start)), start = i + 1;
  }
  if (!alts.empty()) {
    alts.push_back(body.substr(start));
    return alts;
  }
  const size_t dots = body.find("..");
  if (dots == std::string::npos) return {};
  const std::string a = body.substr(0, dots), b = body.substr(dots + 2);
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  };
  if (!numeric(a) || !numeric(b)) return {};
  const long long lo = std::stoll(a), hi = std::stoll(b);
  const unsigned long long n = (unsigned long long)(hi > lo ? hi - lo : lo - hi) + 1;
  if (n > limits::kShardFiles)
    fail("shard pattern ", pattern, ": the range {", body, "} names more than ", limits::kShardFiles, " files");
  const bool pad = (a.size() > 1 && a[0] == '0') || (b.size() > 1 && b[0] == '0');
  const size_t width = pad ? std::max(a.size(), b.size()) : 0;
  for (unsigned long long k = 0; k < n; k++) {
    std::string v = std::to_string(hi >= lo ? lo + (long long)k : lo - (long long)k);
    if (v.size() < width) v.insert(0, width - v.size(), '0');
    alts.push_back(v);
  }
  return alts;
}

void expand(const std::string& s, const std::string& pattern, std::vector<std::string>& out) {
  // The first '{' that opens a list or a range (matching '}' found by depth); literal braces are skipped.
  for (size_t i = s.find('{'); i != std::string::npos; i = s.find('{', i + 1)) {
    int depth = 0;
    size_t j = i;
    for (; j < s.size(); j++) {
      if (s[j] == '{') depth++;
      if (s[j] == '}' && --depth == 0) break;
    }
    if (j >= s.size()) return out.push_back(s);  // unbalanced: the rest is literal
    const std::vector<std::string> alts = alternatives(s.substr(i + 1, j - i - 1), pattern);
    if (alts.empty()) continue;
    for (const std::string& alt : alts) {
      expand(s.substr(0, i) + alt + s.substr(j + 1), pattern, out);
      if (out.size() > limits::kShardFiles)
        fail("shard pattern ", pattern, " names more than ", limits::kShardFiles, " files");
    }
    return;
  }
  out.push_back(s);
}

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

bool is_regular(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  std::vector<std::string> out;
  expand(pattern, pattern, out);
  return out;
}

bool is_shard_pattern(const std::string& path) { return path.find('{') != std::string::npos || has_glob(path); }

std::vector<std::string> resolve_shard_pattern(const std::string& pattern) {
  std::vector<std::string> files;
  std::vector<std::string> missing;
  const std::vector<std::string> names = expand_braces(pattern);
  for (const std::string& name : names) {
    if (!has_glob(name)) {
      if (is_regular(name))
        files.push_back(name);
      else
        missing.push_back(name);
      continue;
    }
    glob_t g{};
    const int rc = ::glob(name.c_str(), 0, nullptr, &g);
    if (rc == 0)
      for (size_t k = 0; k < g.gl_pathc; k++)
        if (is_regular(g.gl_pathv[k])) files.push_back(g.gl_pathv[k]);
    globfree(&g);
    if (files.size() > limits::kShardFiles)
      fail("shard pattern ", pattern, " matches more than ", limits::kShardFiles, " files");
  }
  if (files.empty())
    fail("shard pattern ", pattern, " matches no file (", names.size(), names.size() == 1 ? " name" : " names",
         " after brace expansion, e.g. ", names[0], ")");
  if (!missing.empty())
    fail("shard pattern ", pattern, ": ", missing[0], " does not exist (", missing.size(), " of ", names.size(),
         " shards missing)");
  return files;
}

std::vector<std::string> shards_in_folder(const std::string& dir, bool train) {
  std::vector<std::string> all;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec)) {
    const std::string n = e.path().filename().string();
    if (n.empty() || n[0] == '.' || e.path().extension() != ".tar" || !is_regular(e.path())) continue;
    all.push_back(n);
  }
  if (all.empty()) return {};
  std::sort(all.begin(), all.end());
  auto starting = [&](const char* p) {
    std::vector<std::string> r;
    for (const auto& n : all)
      if (n.rfind(p, 0) == 0) r.push_back((fs::path(dir) / n).string());
    return r;
  };
  std::vector<std::string> tr = starting("train"), va = starting("val"), te = starting("test");
  if (tr.empty() && va.empty() && te.empty()) {
    for (auto& n : all) n = (fs::path(dir) / n).string();
    return all;
  }
  std::vector<std::string> pick = train ? tr : !va.empty() ? va : te;
  if (pick.empty())
    fail("data path ", dir, " holds shards of other splits but none for the ", train ? "train" : "val/test",
         " split (names starting with ", train ? "\"train\"" : "\"val\" or \"test\"", ")");
  return pick;
}

}  // namespace mae
