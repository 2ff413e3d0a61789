#include "ops/op_profile.h"

#include <algorithm>
#include <map>

namespace mae::prof {

bool g_on = false;

namespace {
std::map<std::string, OpTime>& table() {
  static std::map<std::string, OpTime> t;
  return t;
}
}  // namespace

void set_on(bool on) { g_on = on; }

void add(const char* op, double seconds) {
  OpTime& t = table()[op];
  if (t.op.empty()) t.op = op;
  t.ms += seconds * 1e3;
  ++t.calls;
}

std::vector<OpTime> report() {
  std::vector<OpTime> out;
  for (auto& [k, t] : table()) out.push_back(t);
  table().clear();
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
  return out;
}

}  // namespace mae::prof
