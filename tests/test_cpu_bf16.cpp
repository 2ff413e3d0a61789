// --precision bf16 on the CPU (ops/cpu/precision.h): the linear layers' GEMMs with bf16 operands through oneDNN,
// fp32 accumulation and outputs. Skipped (GTEST_SKIP) on CPUs without avx512_bf16/AMX-BF16 and in builds without
// oneDNN; the rounding helper and the error path are tested everywhere.
// Tolerances, as the CUDA bf16 tests: ‖bf16 − fp32‖ / ‖fp32‖ ≤ 1e-2 for one op (bf16 keeps 8 bits of mantissa:
// each operand is off by ≤ 2⁻⁹ relative, a K-term dot product of random signs by ~2⁻⁸ of its size); the model's
// loss within 1 %, its gradients within 5 % (they pass through ~2·depth bf16 GEMMs).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/error.h"
#include "model_run.h"
#include "op_cases.h"
#include "ops/backend.h"
#include "ops/cpu/bf16.h"
#include "ops/cpu/host_info.h"
#include "ops/cpu/precision.h"
#include "ops/device_spec.h"

using namespace mae;
using mae::test::rel_l2;

namespace {

using F = std::vector<float>;
constexpr double kTolBf16 = 1e-2;
F rnd(size_t n, unsigned seed) { return test::cast<float>(test::randn(n, seed)); }

class CpuBf16 : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cpu::bf16_available(&why)) GTEST_SKIP() << "no native bf16 GEMMs: " << why;
  }
  void TearDown() override { cpu::set_precision(Precision::fp32); }
};

TEST(CpuBf16Rounding, NearestEvenAndSpecials) {
  EXPECT_EQ(cpu::to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(cpu::to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(cpu::to_bf16(1.0f + 0x1p-8f), 0x3F80);       // halfway, even neighbour below
  EXPECT_EQ(cpu::to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);   // halfway, even neighbour above
  EXPECT_EQ(cpu::to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);  // above halfway
  EXPECT_EQ(cpu::to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_TRUE(std::isnan(cpu::bf16_to_float(cpu::to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(cpu::bf16_to_float(cpu::to_bf16(std::bit_cast<float>(0x7F800001u)))));  // not inf
  F x(100000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(double(i)) * 1e3;
  std::vector<uint16_t> b(x.size());
  cpu::to_bf16(b.data(), x.data(), x.size());  // the parallel loop agrees with the scalar rounding
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(b[i], cpu::to_bf16(x[i])) << i;
}

TEST(CpuBf16Rounding, HostInfoNamesTheCpu) {
  const cpu::HostInfo& h = cpu::host_info();
  EXPECT_FALSE(h.cpu_model.empty());
  EXPECT_FALSE(h.openblas_core.empty());
  std::printf("host: %s\n", h.line().c_str());
}

// Where bf16 is missing, the flag's error names the flag and the reason; where it is there, it parses.
TEST(CpuBf16Rounding, FlagErrorOrAccepted) {
  std::string why;
  if (cpu::bf16_available(&why)) {
    EXPECT_EQ(parse_device_spec("cpu", "bf16").name(), "cpu (bf16)");
  } else {
    try {
      parse_device_spec("cpu", "bf16");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--precision bf16"), std::string::npos) << e.what();
    }
  }
}

// The harness's linear and linear + GELU cases (odd shapes, no bias, accumulation into prefilled gradients)
// against the fp32 reference loops, plus its guard and accumulation checks on the bf16 path.
TEST_F(CpuBf16, LinearOpsCloseToFp32) {
  const cpu::PrecisionScope bf16(Precision::bf16);
  int n = 0;
  test::for_each_case([&](const auto& c) {
    if (c.family != "linear" && c.family != "linear_gelu") return;
    SCOPED_TRACE(c.name);
    ++n;
    test::compare<CpuBackend<float>, RefBackend<float>>(c, kTolBf16, kTolBf16, test::Metric::rel_l2, "bf16 vs ref");
    test::check_guards<CpuBackend<float>>(c);
    test::check_accumulate<CpuBackend<float>>(c, 1e-5);
  });
  EXPECT_GT(n, 0);
}

// The bf16 copy of W made by the forward is refreshed when W changes between forwards (an optimizer step).
TEST_F(CpuBf16, WeightCopyFollowsUpdates) {
  const int N = 37, I = 64, O = 48;
  F in = rnd(size_t(N) * I, 1), W = rnd(size_t(O) * I, 2), out(size_t(N) * O), ref(out.size());
  const cpu::PrecisionScope bf16(Precision::bf16);
  CpuBackend<float>::linear_forward(out.data(), in.data(), W.data(), nullptr, N, I, O);
  for (size_t i = 0; i < W.size(); i += 2) W[i] *= -0.5f;  // an update in place, same address
  CpuBackend<float>::linear_forward(out.data(), in.data(), W.data(), nullptr, N, I, O);
  RefBackend<float>::linear_forward(ref.data(), in.data(), W.data(), nullptr, N, I, O);
  EXPECT_LE(rel_l2(out, ref), kTolBf16);
  // and the backward's din uses the updated copy too
  F dout = rnd(out.size(), 3), din(size_t(N) * I, 0.f), din_ref(din.size(), 0.f);
  CpuBackend<float>::linear_backward(din.data(), nullptr, nullptr, dout.data(), in.data(), W.data(), N, I, O);
  RefBackend<float>::linear_backward(din_ref.data(), nullptr, nullptr, dout.data(), in.data(), W.data(), N, I, O);
  EXPECT_LE(rel_l2(din, din_ref), kTolBf16);
}

// The whole model (PyTorch fixture cfgB: forward, loss, backward; tests/model_run.h) in bf16 against fp32.
TEST_F(CpuBf16, ModelCloseToFp32) {
  const std::string stem = test::fixture_dir() + "/cfgB";
  const test::ModelRun a = test::run_model<CpuBackend<float>>(stem, true, 0.75);
  const cpu::PrecisionScope bf16(Precision::bf16);
  const test::ModelRun b = test::run_model<CpuBackend<float>>(stem, true, 0.75);
  std::printf("cfgB bf16 vs fp32: loss %.6f vs %.6f (rel %.2e), pred rel_l2 %.2e, grads rel_l2 %.2e\n", b.loss,
              a.loss, std::abs(a.loss - b.loss) / std::abs(a.loss), rel_l2(b.pred, a.pred), rel_l2(b.grads, a.grads));
  EXPECT_LE(std::abs(a.loss - b.loss), 1e-2 * std::abs(a.loss));
  EXPECT_LE(rel_l2(b.pred, a.pred), kTolBf16);
  EXPECT_LE(rel_l2(b.grads, a.grads), 5e-2);
  EXPECT_GT(rel_l2(b.grads, a.grads), 0.0);  // the bf16 path did run
}

// Leaving the scope gives back fp32: the same bits as a run that never saw bf16.
TEST_F(CpuBf16, Fp32AfterScopeIsBitIdentical) {
  const int N = 29, I = 40, O = 24;
  F in = rnd(size_t(N) * I, 4), W = rnd(size_t(O) * I, 5), b = rnd(O, 6);
  F before(size_t(N) * O), after(before.size()), mid(before.size());
  CpuBackend<float>::linear_forward(before.data(), in.data(), W.data(), b.data(), N, I, O);
  {
    const cpu::PrecisionScope bf16(Precision::bf16);
    CpuBackend<float>::linear_forward(mid.data(), in.data(), W.data(), b.data(), N, I, O);
  }
  CpuBackend<float>::linear_forward(after.data(), in.data(), W.data(), b.data(), N, I, O);
  EXPECT_EQ(before, after);
  EXPECT_NE(before, mid);
}

}  // namespace
