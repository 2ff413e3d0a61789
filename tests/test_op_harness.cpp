// The op × backend harness on the host backends: every case of op_cases.h becomes the tests
// OpHarness/<case>.fd, .cpu, .acc, .guards and .alias (those that apply; op_harness.h says what each checks), and
// OpHarness.CoversEveryOp keeps the case list complete.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "op_cases.h"
#include "ops/op_profile.h"

namespace mae::test {
namespace {

const bool registered = [] {
  for_each_case([](const auto& c) {
    const std::string suite = "OpHarness/" + c.name;
    if (c.fd_applies()) register_check(suite, "fd", [c] { check_fd(c); });
    register_check(suite, "cpu", [c] { check_cpu(c); });
    if (c.has_backward) {
      register_check(suite, "acc", [c] {
        for_each_host_backend([&]<class Bk>() { check_accumulate<Bk>(c, c.tol.acc[sizeof(typename Bk::T) == 4]); });
      });
    }
    register_check(suite, "guards", [c] { for_each_host_backend([&]<class Bk>() { check_guards<Bk>(c); }); });
    if (!c.aliases.empty())
      register_check(suite, "alias", [c] { for_each_host_backend([&]<class Bk>() { check_alias<Bk>(c); }); });
  });
  return true;
}();

// Every op declared in op_decls.inc is called by some case (forward or backward): the cases run once on the CPU
// backend with its per-op profiling on, which records the name of every op called.
TEST(OpHarness, CoversEveryOp) {
  std::ifstream f(std::string(MAE_SOURCE_DIR) + "/src/ops/op_decls.inc");
  ASSERT_TRUE(f) << "op_decls.inc";
  std::stringstream text;
  text << f.rdbuf();
  const std::string s = text.str();
  const std::regex decl(R"(template <class T> (?:void|T) ([a-z0-9_]+)\()");
  std::set<std::string> declared;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), decl); it != std::sregex_iterator(); ++it)
    declared.insert((*it)[1]);
  EXPECT_GE(declared.size(), 30u) << "op_decls.inc parsed wrong";

  CpuBackend<double>::set_profiling(true);
  for_each_case([](const auto& c) {
    size_t elems = 0;
    for (const auto& t : c.ts) elems += t.n;
    if (elems > 100000) return;  // every op has small cases: the large ones would only cost time
    const Data d = make_data(c);
    CaseRun<CpuBackend<double>> run(c);
    run.forward(c.fwd, d);
    if constexpr (std::decay_t<decltype(c)>::has_backward) run.backward(c.bwd, d);
  });
  CpuBackend<double>::set_profiling(false);
  std::set<std::string> called;
  for (const auto& t : CpuBackend<double>::profile_report()) called.insert(t.op);
  for (const auto& op : declared) EXPECT_TRUE(called.count(op)) << op << " has no case in tests/op_cases.h";
}

}  // namespace
}  // namespace mae::test
