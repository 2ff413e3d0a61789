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
#include "model/inference_model.h"
#include "model_run.h"
#include "op_cases.h"
#include "ops/backend.h"
#include "ops/cpu/bf16.h"
#include "ops/cpu/host_info.h"
#include "ops/cpu/precision.h"
#include "ops/device_spec.h"
#ifdef MAE_DNNL
#include "ops/cpu/attention_dnnl.h"
#endif

using namespace mae;
using mae::test::rel_l2;

namespace {

using F = std::vector<float>;
constexpr double kTolBf16 = 1e-2;

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

// The harness's linear, linear + GELU and attention cases (odd shapes, no bias, accumulation into prefilled
// gradients, attention from 1 to 257 tokens) against the fp32 reference loops, plus its guard and accumulation
// checks on the bf16 path.
TEST_F(CpuBf16, GemmOpsCloseToFp32) {
  const cpu::PrecisionScope bf16(Precision::bf16);
  int n = 0;
  test::for_each_case([&](const auto& c) {
    if (c.family != "linear" && c.family != "linear_gelu" && c.family != "attention") return;
    SCOPED_TRACE(c.name);
    ++n;
    test::compare<CpuBackend<float>, RefBackend<float>>(c, kTolBf16, kTolBf16, test::Metric::rel_l2, "bf16 vs ref");
    test::check_guards<CpuBackend<float>>(c);
    test::check_accumulate<CpuBackend<float>>(c, 1e-5);
  });
  EXPECT_GT(n, 0);
}

// Attention's forward takes the bf16 products from 64 tokens on (cpu::attention_onednn_pays) and stays fp32, bit for
// bit, below; the backward's products stay fp32 (its gradient differs only through the probabilities).
TEST_F(CpuBf16, AttentionBf16FromLongSequences) {
  for (int Tn : {50, 97}) {
    SCOPED_TRACE(Tn);
    const int B = 2, D = 96, H = 4;
    const F qkv = test::randn_f(size_t(B) * Tn * 3 * D, 9), dout = test::randn_f(size_t(B) * Tn * D, 10);
    auto run = [&](Precision p, F& out, F& dqkv) {
      const cpu::PrecisionScope scope(p);
      F att(size_t(B) * H * Tn * Tn), scratch(att.size());
      out.assign(size_t(B) * Tn * D, 0.f);
      dqkv.assign(qkv.size(), 0.f);
      CpuBackend<float>::attention_forward(out.data(), att.data(), qkv.data(), B, Tn, D, H);
      CpuBackend<float>::attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), B, Tn,
                                            D, H);
    };
    F o32, g32, o16, g16;
    run(Precision::fp32, o32, g32);
    run(Precision::bf16, o16, g16);
#ifdef MAE_DNNL  // (bf16 is never available without it: the fixture skips)
    EXPECT_EQ(cpu::attention_onednn_pays(Tn), Tn >= 64);
#endif
    if (Tn < 64) {
      EXPECT_EQ(o16, o32);
      EXPECT_EQ(g16, g32);
    } else {
      EXPECT_NE(o16, o32);
      EXPECT_LE(rel_l2(o16, o32), kTolBf16);
      EXPECT_LE(rel_l2(g16, g32), kTolBf16);
    }
  }
}

// The bf16 copy of W made by the forward is refreshed when W changes between forwards (an optimizer step).
TEST_F(CpuBf16, WeightCopyFollowsUpdates) {
  const int N = 37, I = 64, O = 48;
  F in = test::randn_f(size_t(N) * I, 1), W = test::randn_f(size_t(O) * I, 2), out(size_t(N) * O), ref(out.size());
  const cpu::PrecisionScope bf16(Precision::bf16);
  CpuBackend<float>::linear_forward(out.data(), in.data(), W.data(), nullptr, N, I, O);
  for (size_t i = 0; i < W.size(); i += 2) W[i] *= -0.5f;  // an update in place, same address
  CpuBackend<float>::linear_forward(out.data(), in.data(), W.data(), nullptr, N, I, O);
  RefBackend<float>::linear_forward(ref.data(), in.data(), W.data(), nullptr, N, I, O);
  EXPECT_LE(rel_l2(out, ref), kTolBf16);
  // and the backward's din uses the updated copy too
  F dout = test::randn_f(out.size(), 3), din(size_t(N) * I, 0.f), din_ref(din.size(), 0.f);
  CpuBackend<float>::linear_backward(din.data(), nullptr, nullptr, dout.data(), in.data(), W.data(), N, I, O);
  RefBackend<float>::linear_backward(din_ref.data(), nullptr, nullptr, dout.data(), in.data(), W.data(), N, I, O);
  EXPECT_LE(rel_l2(din, din_ref), kTolBf16);
}

// An inference model reuses its bf16 weight copies from one forward to the next (cpu::FrozenWeightsScope), and
// set_params makes them new: even when only elements the copies' spot check does not read change (element 1 of
// every tensor), the latent is bit for bit that of a model that was given those weights from the start.
TEST_F(CpuBf16, InferenceModelWeightCopiesFollowSetParams) {
  ModelConfig cfg;
  cfg.img_size = 16, cfg.patch_size = 4, cfg.in_chans = 3, cfg.embed_dim = 32, cfg.depth = 2, cfg.num_heads = 4;
  cfg.decoder_embed_dim = 16, cfg.decoder_depth = 1, cfg.decoder_num_heads = 2;
  const int B = 3;
  const DeviceSpec bf16{Device::cpu, Precision::bf16};
  auto m = make_inference_model(cfg, B, 0.0, bf16);
  m->init(7);
  F p1(m->params().total);
  m->get_params(p1.data());
  const F imgs = test::randn_f(size_t(B) * 3 * 16 * 16, 8), noise(size_t(B) * cfg.num_patches(), 0.5f);
  const size_t nl = size_t(B) * (1 + m->len_keep()) * cfg.embed_dim;
  auto latent = [&](InferenceModel& x) {
    const float* l = x.forward_encoder(imgs.data(), noise.data());
    return F(l, l + nl);
  };
  const F l1 = latent(*m);
  EXPECT_EQ(latent(*m), l1);  // the reused copies give the same bits
  F p2 = p1;
  for (const ParamSpec& s : m->params().specs)
    if (s.numel > 3) p2[s.offset + 1] += 0.5f;
  m->set_params(p2.data());
  const F l2 = latent(*m);
  auto fresh = make_inference_model(cfg, B, 0.0, bf16);
  fresh->set_params(p2.data());
  EXPECT_EQ(l2, latent(*fresh));
  EXPECT_NE(l2, l1);
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
  F in = test::randn_f(size_t(N) * I, 4), W = test::randn_f(size_t(O) * I, 5), b = test::randn_f(O, 6);
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
