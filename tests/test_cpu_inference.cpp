// The fp32 forward of an inference model on oneDNN (cpu::inference_onednn, ops/cpu/precision.h): inside a
// FrozenWeightsScope the linear layers are oneDNN f32 matmuls with the bias (and fc1's exact GELU) fused, and
// attention's products from 64 tokens on are batched matmuls. Checked against the double-precision reference ops
// and against the OpenBLAS path it replaces; outside a scope (training) nothing changes, bit for bit. Skipped in
// builds without oneDNN, except the error of switching it on there.
// Tolerance: fp32 GEMMs summed in another order (and oneDNN's own erf in the GELU): ‖x − ref‖ / ‖ref‖ ≤ 1e-5, the
// harness's fp32 tolerance for these ops.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "model/inference_model.h"
#include "op_cases.h"
#include "ops/backend.h"
#include "ops/cpu/precision.h"
#ifdef MAE_DNNL
#include "ops/cpu/attention_dnnl.h"
#endif

using namespace mae;
using mae::test::rel_l2;

namespace {

using F = std::vector<float>;
using D = std::vector<double>;
using Cpu = CpuBackend<float>;
using Ref = RefBackend<double>;
constexpr double kTol = 1e-5;

D wide(const F& x) { return D(x.begin(), x.end()); }

class CpuInferenceOnednn : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu::inference_onednn_built()) GTEST_SKIP() << "built without oneDNN: the inference forward runs OpenBLAS";
    cpu::set_inference_onednn(true);
  }
  void TearDown() override {
    if (cpu::inference_onednn_built()) cpu::set_inference_onednn(true);
  }
};

// The switch is off outside a FrozenWeightsScope and under bf16; on inside one at fp32.
TEST_F(CpuInferenceOnednn, OnlyInsideFrozenWeightsAtFp32) {
  EXPECT_FALSE(cpu::inference_onednn());
  {
    const cpu::FrozenWeightsScope frozen(1);
    EXPECT_TRUE(cpu::inference_onednn());
    cpu::set_inference_onednn(false);
    EXPECT_FALSE(cpu::inference_onednn());
  }
  EXPECT_FALSE(cpu::inference_onednn());
}

// Linear layers of odd sizes, with and without bias, one row, one input: close to the double reference; outside
// the scope the same call is the OpenBLAS path, bit for bit what it was with the switch off.
TEST_F(CpuInferenceOnednn, LinearCloseToReference) {
  struct S { int N, I, O; bool bias; };
  for (const S s : {S{37, 64, 48, true}, S{1, 17, 5, true}, S{197, 192, 576, true}, S{33, 1, 7, true},
                    S{50, 96, 31, false}}) {
    SCOPED_TRACE(testing::Message() << s.N << "x" << s.I << "->" << s.O << (s.bias ? " bias" : ""));
    const F in = test::randn_f(size_t(s.N) * s.I, 1), W = test::randn_f(size_t(s.O) * s.I, 2);
    const F b = test::randn_f(s.O, 3);
    const float* bp = s.bias ? b.data() : nullptr;
    D ref(size_t(s.N) * s.O);
    Ref::linear_forward(ref.data(), wide(in).data(), wide(W).data(), s.bias ? wide(b).data() : nullptr, s.N, s.I, s.O);
    F onednn(ref.size(), NAN), train(ref.size()), train_off(ref.size());
    {
      const cpu::FrozenWeightsScope frozen(1);
      Cpu::linear_forward(onednn.data(), in.data(), W.data(), bp, s.N, s.I, s.O);
    }
    EXPECT_LE(rel_l2(wide(onednn), ref), kTol);
    Cpu::linear_forward(train.data(), in.data(), W.data(), bp, s.N, s.I, s.O);
    cpu::set_inference_onednn(false);
    {
      const cpu::FrozenWeightsScope frozen(1);
      Cpu::linear_forward(train_off.data(), in.data(), W.data(), bp, s.N, s.I, s.O);
    }
    cpu::set_inference_onednn(true);
    EXPECT_EQ(train, train_off);
    if (s.I > 1) {
      EXPECT_NE(onednn, train);  // the oneDNN path did run (another summation order)
    }
  }
}

// Linear + GELU: oneDNN's GELU post-op writes the activation close to the reference's exact GELU (inputs spread
// over the GELU's curved range), and leaves the pre-activation alone (only a backward reads it).
TEST_F(CpuInferenceOnednn, LinearGeluCloseToReferenceAndKeepsNoPreActivation) {
  const int N = 61, I = 48, O = 96;
  const F in = test::randn_f(size_t(N) * I, 4), W = test::randn_f(size_t(O) * I, 5), b = test::randn_f(O, 6);
  D pre_ref(size_t(N) * O), act_ref(pre_ref.size());
  Ref::linear_gelu_forward(pre_ref.data(), act_ref.data(), wide(in).data(), wide(W).data(), wide(b).data(), N, I, O);
  F pre(pre_ref.size(), 12345.f), act(pre_ref.size());
  {
    const cpu::FrozenWeightsScope frozen(1);
    Cpu::linear_gelu_forward(pre.data(), act.data(), in.data(), W.data(), b.data(), N, I, O);
  }
  EXPECT_LE(rel_l2(wide(act), act_ref), kTol);
  double worst = 0;
  for (size_t i = 0; i < act.size(); ++i) worst = std::max(worst, std::abs(double(act[i]) - act_ref[i]));
  EXPECT_LE(worst, 1e-5);
  EXPECT_EQ(pre, F(pre.size(), 12345.f));
  // Outside the scope: the training path (pre kept), as before.
  Cpu::linear_gelu_forward(pre.data(), act.data(), in.data(), W.data(), b.data(), N, I, O);
  EXPECT_LE(rel_l2(wide(pre), pre_ref), kTol);
}

// Attention: the batched oneDNN products from 64 tokens on, close to the reference; below, the per-head OpenBLAS
// GEMMs, bit for bit those of training.
TEST_F(CpuInferenceOnednn, AttentionCloseToReference) {
  for (int Tn : {13, 50, 97, 197}) {
    SCOPED_TRACE(Tn);
    const int B = 2, Dm = 96, H = 3;
    const F qkv = test::randn_f(size_t(B) * Tn * 3 * Dm, 9);
    D out_ref(size_t(B) * Tn * Dm), att_ref(size_t(B) * H * Tn * Tn);
    Ref::attention_forward(out_ref.data(), att_ref.data(), wide(qkv).data(), B, Tn, Dm, H);
    F out(out_ref.size()), att(att_ref.size()), out_train(out.size()), att_train(att.size());
    {
      const cpu::FrozenWeightsScope frozen(1);
      Cpu::attention_forward(out.data(), att.data(), qkv.data(), B, Tn, Dm, H);
    }
    Cpu::attention_forward(out_train.data(), att_train.data(), qkv.data(), B, Tn, Dm, H);
    EXPECT_LE(rel_l2(wide(out), out_ref), kTol);
    EXPECT_LE(rel_l2(wide(att), att_ref), kTol);
#ifdef MAE_DNNL
    EXPECT_EQ(cpu::attention_onednn_pays(Tn), Tn >= 64);
#endif
    if (Tn < 64) {
      EXPECT_EQ(out, out_train);
    } else {
      EXPECT_NE(out, out_train);
    }
  }
}

// A whole inference model (a small config: 2 blocks of 65 tokens, in row tiles at batch 32 on 2 threads): the latent on
// oneDNN against the OpenBLAS path it replaces; the same model again gives the same bits, whichever thread takes
// which tile (the inference scope reaches the tiles' threads: without that, the tiles the second thread took ran
// OpenBLAS and the latent changed from call to call).
TEST_F(CpuInferenceOnednn, InferenceModelCloseToOpenblas) {
  ModelConfig cfg;
  cfg.img_size = 32, cfg.patch_size = 4, cfg.in_chans = 3, cfg.embed_dim = 48, cfg.depth = 2, cfg.num_heads = 3;
  cfg.decoder_embed_dim = 16, cfg.decoder_depth = 1, cfg.decoder_num_heads = 2;
  const int B = 32, L = cfg.num_patches();
  auto m = make_inference_model(cfg, B, 0.0);
  m->init(3);
  const F imgs = test::randn_f(size_t(B) * 3 * 32 * 32, 8);
  F noise(size_t(B) * L);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = float(i % L) / float(L);
  const size_t nl = size_t(B) * (1 + L) * cfg.embed_dim;
  auto latent = [&] {
    const float* l = m->forward_encoder(imgs.data(), noise.data());
    return F(l, l + nl);
  };
  const F a = latent();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(latent(), a) << i;
  cpu::set_inference_onednn(false);
  const F b = latent();
  cpu::set_inference_onednn(true);
  EXPECT_NE(a, b);
  EXPECT_LE(rel_l2(wide(a), wide(b)), kTol);
}

}  // namespace

// Without oneDNN the switch cannot be turned on, and says why.
TEST(CpuInferenceOnednnBuild, SwitchingOnWithoutOnednnFails) {
  if (cpu::inference_onednn_built()) {
    EXPECT_NO_THROW(cpu::set_inference_onednn(true));
    return;
  }
  try {
    cpu::set_inference_onednn(true);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("oneDNN"), std::string::npos) << e.what();
  }
}
