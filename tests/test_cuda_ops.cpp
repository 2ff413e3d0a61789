// The CUDA backend against the CPU backend (float). Every op of op_decls.inc through the op × backend harness:
// each case of tests/op_cases.h becomes OpHarnessCuda/<case>.cuda (cuda vs cpu on outputs, state and gradients
// started non-zero so the += rule takes part; then guards, the += rule with nullptr gradients and aliasing on the
// device). Beside it: the other code paths of the same cases (the cuBLAS attention fallback, the bf16 GEMMs), the
// one-kernel AdamW, and the whole model on CudaBackend against the committed PyTorch fixtures (as test_parity does on
// the CPU). Tolerances: fp32 ‖cuda − cpu‖ / ‖cpu‖ ≤ 1e-5 (0 for the patch gathers); bf16 GEMMs ≤ 1e-2.
// Without a device (or a driver) every test is skipped.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "io/safetensors.h"
#include "model/inference_model.h"
#include "model/mae.h"
#include "model/vit.h"
#include "model/weights.h"
#include "model_run.h"
#include "op_cases.h"
#include "ops/backend.h"
#include "ops/cuda/backend_cuda.h"
#include "train/adamw.h"
#include "train/step_graph.h"

using namespace mae;
using mae::test::rel_l2;

namespace {

using F = std::vector<float>;
constexpr double kTol = 1e-5, kTolBf16 = 1e-2;

F rnd(size_t n, unsigned seed, float scale = 1.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  F v(n);
  for (auto& x : v) x = d(g);
  return v;
}
F uni(size_t n, unsigned seed, float lo, float hi) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  F v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// A device copy of a host vector; host() reads it back.
template <class T> struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    p = CudaMemory::alloc<T>(n);
    CudaMemory::upload(p, h.data(), n);
  }
  ~Dev() { CudaMemory::release(p); }
  Dev(const Dev&) = delete;
  std::vector<T> host() const {
    std::vector<T> h(n);
    CudaMemory::download(h.data(), p, n);
    return h;
  }
  operator T*() const { return p; }
};
using DF = Dev<float>;

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    cuda::set_precision(cuda::Precision::fp32);
  }
  void TearDown() override {
    if (cuda::device_count() > 0) cuda::set_precision(cuda::Precision::fp32);
    cuda::set_attention_impl(cuda::AttentionImpl::fused);
  }
};

#define EXPECT_REL(got, want, tol) EXPECT_LE(rel_l2(got, want), tol) << #got

// cuBLAS/cuBLASLt are loaded on first use (src/ops/cuda/cublas_dl.cu), not at start: the process has not loaded them
// until a cuBLAS function is called (this test comes first in the file, so it runs before the others when they share
// a process); then the forwarders reach the library's own (host-side descriptor calls that need no device: this runs
// wherever the CUDA backend is built).
TEST(CublasLoading, OnFirstUseOnly) {
  const std::string lt = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
  EXPECT_EQ(dlopen(lt.c_str(), RTLD_NOW | RTLD_NOLOAD), nullptr) << lt << " was loaded at start";
  EXPECT_STREQ(cublasGetStatusString(CUBLAS_STATUS_SUCCESS), "cuBLAS not loaded");
  cublasLtMatmulPreference_t pref = nullptr;
  ASSERT_EQ(cublasLtMatmulPreferenceCreate(&pref), CUBLAS_STATUS_SUCCESS);
  const size_t ws = 1 << 20;
  EXPECT_EQ(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasLtMatmulPreferenceDestroy(pref), CUBLAS_STATUS_SUCCESS);
  cublasLtMatrixLayout_t layout = nullptr;
  EXPECT_EQ(cublasLtMatrixLayoutCreate(&layout, CUDA_R_32F, 4, 3, 4), CUBLAS_STATUS_SUCCESS);
  EXPECT_NE(layout, nullptr);
  EXPECT_NE(dlopen(lt.c_str(), RTLD_NOW | RTLD_NOLOAD), nullptr);
  // Once cuBLAS itself is loaded, its own status strings.
  cublasHandle_t h = nullptr;
  (void)cublasCreate(&h);  // fails without a device; loads the library either way
  EXPECT_STRNE(cublasGetStatusString(CUBLAS_STATUS_NOT_INITIALIZED), "cuBLAS not loaded");
}


TEST_F(Cuda, DeviceInfo) {
  const std::string name = cuda::device_name();
  EXPECT_FALSE(name.empty());
  std::printf("device: %s\n", name.c_str());
}

// ---- every op through the harness ----
const bool registered = [] {
  test::for_each_case([](const auto& c) {
    test::register_check("OpHarnessCuda/" + c.name, "cuda", [c] {
      if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
      const cuda::PrecisionScope fp32(cuda::Precision::fp32);
      test::compare<CudaBackend<float>, CpuBackend<float>>(c, c.tol.cuda_fwd, c.tol.cuda_bwd, test::Metric::rel_l2,
                                                           "cuda vs cpu");
      test::check_guards<CudaBackend<float>>(c);
      test::check_accumulate<CudaBackend<float>>(c, std::max(c.tol.acc[1], c.tol.cuda_bwd));
      test::check_alias<CudaBackend<float>>(c);
    });
  });
  return true;
}();

// The harness's cases of some op families against the CPU under the current precision and attention settings.
void compare_family(std::initializer_list<std::string> families, double tol) {
  test::for_each_case([&](const auto& c) {
    if (std::find(families.begin(), families.end(), c.family) == families.end()) return;
    SCOPED_TRACE(c.name);
    test::compare<CudaBackend<float>, CpuBackend<float>>(c, tol, tol, test::Metric::rel_l2, "cuda vs cpu");
  });
}

// The bf16 GEMM path (cuBLASLt on aligned shapes, cublasGemmEx otherwise) of linear and linear + GELU.
TEST_F(Cuda, LinearBf16) {
  cuda::set_precision(cuda::Precision::bf16);
  compare_family({"linear", "linear_gelu"}, kTolBf16);
}

// The attention cases on the cuBLAS path (strided-batched GEMMs + softmax kernel: the fallback for long sequences
// and large heads, and MAE_CUDA_ATTENTION=cublas) in fp32, and with bf16 operands on tensor cores.
TEST_F(Cuda, AttentionCublas) {
  cuda::set_attention_impl(cuda::AttentionImpl::cublas);
  compare_family({"attention"}, kTol);
}
TEST_F(Cuda, AttentionCublasBf16) {
  cuda::set_precision(cuda::Precision::bf16);
  cuda::set_attention_impl(cuda::AttentionImpl::cublas);
  compare_family({"attention"}, kTolBf16);
}

TEST_F(Cuda, AdamWFlatMatchesPerTensor) {
  ModelConfig cfg = preset("mae_vit_fmnist");
  const ParamList pl = make_mae_params(cfg);
  F p = rnd(pl.total, 1), m(pl.total, 0.f), v(pl.total, 0.f);
  const F g = rnd(pl.total, 2);
  DF d_p(p), d_m(m), d_v(v), d_g(g);
  for (long t = 1; t <= 3; ++t) {
    adamw_step<CpuBackend<float>>(pl, p.data(), m.data(), v.data(), g.data(), 1e-3f, AdamWConfig{}, t);
    adamw_step<CudaBackend<float>>(pl, d_p.p, d_m.p, d_v.p, d_g.p, 1e-3f, AdamWConfig{}, t);
  }
  EXPECT_REL(d_p.host(), p, kTol);
  EXPECT_REL(d_v.host(), v, kTol);
  double ss = 0;
  for (float x : g) ss += double(x) * x;
  EXPECT_NEAR(cuda::sum_squares(d_g.p, pl.total), ss, 1e-9 * ss);
}

// ---- the model on CudaBackend against the PyTorch fixtures (same tolerances as test_parity; tests/model_run.h) ----
using test::Fixture;
using test::fixture_dir;
using test::fixture_params;
using test::load_fixture;
using test::ModelRun;
using test::run_model;

TEST_F(Cuda, ModelMatchesPyTorchFixtures) {
  for (const std::string cfgname : {"cfgA", "cfgB"})
    for (int np : {0, 1})
      for (int pct : {75, 50}) {
        const std::string stem = fixture_dir() + "/" + cfgname;
        const std::string exp_path =
            stem + "_np" + std::to_string(np) + "_mr" + std::to_string(pct) + ".expected.safetensors";
        ASSERT_TRUE(std::filesystem::exists(exp_path)) << exp_path;
        SCOPED_TRACE(exp_path);
        io::SafeTensorsReader ex(exp_path), wf(stem + ".weights.safetensors");
        ModelConfig cfg = read_config(wf);
        const ModelRun r = run_model<CudaBackend<float>>(stem, np != 0, pct / 100.0);
        const double want_loss = ex.read_f32("loss")[0];
        EXPECT_LE(std::abs(r.loss - want_loss), 1e-5 * std::abs(want_loss)) << r.loss << " vs " << want_loss;
        const auto want_pred = ex.read_f32("pred");
        const int L = cfg.num_patches(), P = cfg.patch_dim(), B = int(want_pred.size() / (size_t(L) * P));
        double worst = 0;
        for (int b = 0; b < B; ++b)
          for (int i = 0; i < L * P; ++i)
            worst = std::max(worst, double(std::abs(r.pred[(size_t(b) * (1 + L) + 1) * P + i] -
                                                    want_pred[size_t(b) * L * P + i])));
        EXPECT_LE(worst, 1e-4) << "pred max abs error";
        EXPECT_EQ(r.mask, ex.read_f32("mask"));
        const ParamList pl = make_mae_params(cfg);
        for (const auto& s : pl.specs) {
          F want(s.numel);
          ex.read_f32("grad." + s.name, want.data(), s.shape);
          F got(r.grads.begin() + s.offset, r.grads.begin() + s.offset + s.numel);
          if (s.name.find("attn.qkv.bias") != std::string::npos) {  // k slice: analytically zero (test_parity)
            const size_t D = s.numel / 3;
            for (size_t i = D; i < 2 * D; ++i) got[i] = want[i] = 0.f;
          }
          EXPECT_LE(rel_l2(got, want), 1e-4) << "grad." << s.name;
        }
      }
}

// The model with the cuBLAS attention path gives the same numbers as with the fused kernel.
TEST_F(Cuda, ModelAttentionImplsAgree) {
  const std::string stem = fixture_dir() + "/cfgA";
  const ModelRun a = run_model<CudaBackend<float>>(stem, true, 0.75);
  cuda::set_attention_impl(cuda::AttentionImpl::cublas);
  const ModelRun b = run_model<CudaBackend<float>>(stem, true, 0.75);
  EXPECT_LE(std::abs(a.loss - b.loss), 1e-5 * std::abs(b.loss));
  EXPECT_LE(rel_l2(a.grads, b.grads), 1e-4);
}

// The bf16 GEMM path: the same model's loss and gradients close to fp32 (bf16 has 8 bits of mantissa).
TEST_F(Cuda, ModelBf16CloseToFp32) {
  const std::string stem = fixture_dir() + "/cfgB";
  const ModelRun a = run_model<CudaBackend<float>>(stem, true, 0.75);
  cuda::set_precision(cuda::Precision::bf16);
  const ModelRun b = run_model<CudaBackend<float>>(stem, true, 0.75);
  EXPECT_LE(std::abs(a.loss - b.loss), 1e-2 * std::abs(a.loss));
  EXPECT_LE(rel_l2(b.pred, a.pred), 1e-2);
  EXPECT_LE(rel_l2(b.grads, a.grads), 5e-2);  // gradients go through ~2·depth bf16 GEMMs
}

// GraphedStep (train/step_graph.h: eager at the first call, captured at the second, replayed after; recaptured when
// dloss changes) gives the same bits as forward_nowait + backward: the same kernels in the same order.
TEST_F(Cuda, ModelGraphStepMatchesEager) {
  for (auto prec : {cuda::Precision::fp32, cuda::Precision::bf16}) {
    cuda::set_precision(prec);
    const Fixture fx = load_fixture(fixture_dir() + "/cfgA", true);
    const auto& imgs = fx.imgs;
    const auto& noise0 = fx.noise;
    using Bk = CudaBackend<float>;
    MaeModel<Bk> eager(fx.cfg, fx.B, 0.75), graph(fx.cfg, fx.B, 0.75);
    const F host = fixture_params(fx, eager);
    Bk::upload(eager.params_data(), host.data(), host.size());
    Bk::upload(graph.params_data(), host.data(), host.size());
    DF dimgs(imgs);
    GraphedStep<Bk> step(graph);
    // it 0 eager (warm), 1 capture, 2–3 replay; dloss changes at 4: eager again, 5 recapture, 6 replay
    for (int it = 0; it < 7; ++it) {
      SCOPED_TRACE("iteration " + std::to_string(it) + (prec == cuda::Precision::bf16 ? " bf16" : " fp32"));
      F noise = noise0;  // a different mask every iteration
      std::rotate(noise.begin(), noise.begin() + (it * 7) % noise.size(), noise.end());
      const float dloss = it < 4 ? 1.f : 0.5f;
      eager.zero_grad();
      eager.forward_nowait(dimgs.p, noise.data());
      eager.backward(dloss);
      const float eager_loss = eager.loss_wait();  // before the other model's step: one loss in flight at a time
      graph.zero_grad();
      step.run(dimgs.p, noise.data(), dloss);
      EXPECT_EQ(eager_loss, graph.loss_wait());
      F ge(eager.params().total), gg(ge.size());
      Bk::download(ge.data(), eager.grads_data(), ge.size());
      Bk::download(gg.data(), graph.grads_data(), gg.size());
      EXPECT_EQ(ge, gg);
    }
  }
}

// The ViT classifier (fine-tuning) on CUDA against the CPU: logits, loss and every gradient, with drop path on
// (explicit per-sample scales, one sample dropped in some blocks).
TEST_F(Cuda, ClassifierModelMatchesCpu) {
  ModelConfig cfg;
  cfg.img_size = 16, cfg.patch_size = 4, cfg.in_chans = 3, cfg.embed_dim = 48, cfg.depth = 3, cfg.num_heads = 4;
  for (bool gp : {true, false}) {
    SCOPED_TRACE(gp ? "global pool" : "cls token");
    ClassifierConfig cc;
    cc.nb_classes = 7, cc.global_pool = gp, cc.drop_path = 0.2;
    const int B = 5;
    VitClassifier<CpuBackend<float>> c(cfg, cc, B);
    VitClassifier<CudaBackend<float>> g(cfg, cc, B);
    c.init(11), g.init(11);
    c.init_head(12, 0.02), g.init_head(12, 0.02);
    c.set_training(true), g.set_training(true);
    F scales(size_t(cfg.depth) * 2 * B, 1.25f);
    scales[3] = scales[2 * B + 1] = 0.f;
    c.blocks().set_drop_scales(scales.data(), B), g.blocks().set_drop_scales(scales.data(), B);
    const F imgs = rnd(size_t(B) * 3 * 16 * 16, 1);
    F targets(size_t(B) * cc.nb_classes, 0.f);
    for (int b = 0; b < B; ++b) targets[size_t(b) * cc.nb_classes + b % cc.nb_classes] = 1.f;
    DF d_imgs(imgs), d_targets(targets);
    const float* lc = c.forward(imgs.data(), B);
    const F want_logits(lc, lc + size_t(B) * cc.nb_classes);
    g.forward(d_imgs.p, B);
    F got_logits(want_logits.size());
    CudaMemory::download(got_logits.data(), g.logits(), got_logits.size());
    EXPECT_REL(got_logits, want_logits, kTol);
    const float lcpu = c.loss(targets.data(), B), lgpu = g.loss(d_targets.p, B);
    EXPECT_LE(std::abs(lcpu - lgpu), 1e-5 * std::abs(lcpu));
    c.zero_grad(), g.zero_grad();
    c.backward(0.5f, B), g.backward(0.5f, B);
    const size_t np = c.params().total;
    F gg(np);
    CudaMemory::download(gg.data(), g.grads_data(), np);
    EXPECT_REL(gg, F(c.grads_data(), c.grads_data() + np), 1e-4);
  }
}

// The evaluation commands' model (InferenceModel) on CUDA gives the CPU's latent, predictions and mask.
TEST_F(Cuda, InferenceModelMatchesCpu) {
  ModelConfig cfg;
  cfg.img_size = 16, cfg.patch_size = 4, cfg.in_chans = 3, cfg.embed_dim = 32, cfg.depth = 2, cfg.num_heads = 4;
  cfg.decoder_embed_dim = 16, cfg.decoder_depth = 1, cfg.decoder_num_heads = 2, cfg.norm_pix_loss = true;
  const int B = 3, L = cfg.num_patches();
  for (double ratio : {0.0, 0.75}) {
    auto c = make_inference_model(cfg, B, ratio, DeviceSpec{}), g = make_inference_model(cfg, B, ratio, DeviceSpec{Device::cuda});
    c->init(5), g->init(5);
    const F imgs = rnd(size_t(B) * 3 * 16 * 16, 2), noise = uni(size_t(B) * L, 3, 0.f, 1.f);
    const size_t nl = size_t(B) * (1 + c->len_keep()) * cfg.embed_dim;
    const float* lc = c->forward_encoder(imgs.data(), noise.data());
    const F want(lc, lc + nl);
    const float* lg = g->forward_encoder(imgs.data(), noise.data());
    EXPECT_REL(F(lg, lg + nl), want, 1e-5);
    if (ratio == 0.0) continue;  // nothing masked: the loss is 0/0
    const float loss_c = c->forward(imgs.data(), noise.data()), loss_g = g->forward(imgs.data(), noise.data());
    EXPECT_LE(std::abs(loss_c - loss_g), 1e-5 * std::abs(loss_c));
    const size_t np = size_t(B) * (1 + L) * cfg.patch_dim();
    EXPECT_REL(F(g->pred(), g->pred() + np), F(c->pred(), c->pred() + np), 1e-5);
    EXPECT_EQ(F(g->mask(), g->mask() + size_t(B) * L), F(c->mask(), c->mask() + size_t(B) * L));
  }
}

}  // namespace

