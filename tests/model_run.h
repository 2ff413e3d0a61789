// One forward + backward of MaeModel on any backend from a committed PyTorch fixture (tests/fixtures/<cfg>.*),
// results copied back to the host: what the CUDA tests (test_cuda_ops.cpp) and the CPU bf16 tests
// (test_cpu_bf16.cpp) compare against another backend or precision.
#pragma once
#include <cstdlib>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/mae.h"
#include "model/weights.h"

namespace mae::test {

inline std::string fixture_dir() {
  const char* e = std::getenv("MAE_FIXTURE_DIR");
  return e && *e ? e : std::string(MAE_SOURCE_DIR) + "/tests/fixtures";
}

struct ModelRun {
  double loss;
  std::vector<float> pred, mask, grads;
};

// A committed fixture: the model's config (norm_pix_loss as asked), its input images and masking noise.
struct Fixture {
  ModelConfig cfg;
  std::vector<float> imgs, noise;
  int B = 0;
  std::string weights;  // the .weights.safetensors file
};

inline Fixture load_fixture(const std::string& stem, bool norm_pix) {
  Fixture f;
  f.weights = stem + ".weights.safetensors";
  io::SafeTensorsReader wf(f.weights), in(stem + ".input.safetensors");
  f.cfg = read_config(wf);
  f.cfg.norm_pix_loss = norm_pix;
  std::vector<int64_t> ishape;
  f.imgs = in.read_f32("imgs", &ishape);
  f.noise = in.read_f32("noise");
  f.B = int(ishape[0]);
  return f;
}

// The fixture's weights laid out as `m`'s parameter buffer, on the host (the caller uploads them).
template <class Model> std::vector<float> fixture_params(const Fixture& f, const Model& m) {
  io::SafeTensorsReader wf(f.weights);
  std::vector<float> host(m.params().total, 0.f);
  load_params(wf, m.params(), host.data());
  return host;
}

template <class Bk> ModelRun run_model(const std::string& stem, bool norm_pix, double ratio) {
  const Fixture fx = load_fixture(stem, norm_pix);
  const ModelConfig& cfg = fx.cfg;
  const auto& imgs = fx.imgs;
  const auto& noise = fx.noise;
  const int B = fx.B;
  MaeModel<Bk> m(cfg, B, ratio);
  const std::vector<float> host = fixture_params(fx, m);
  Bk::upload(m.params_data(), host.data(), host.size());
  float* dimgs = Bk::template alloc<float>(imgs.size());
  Bk::upload(dimgs, imgs.data(), imgs.size());
  ModelRun r;
  r.loss = m.forward(dimgs, noise.data());
  m.zero_grad();
  m.backward();
  const int L = cfg.num_patches(), P = cfg.patch_dim();
  r.pred.resize(size_t(B) * (1 + L) * P);
  Bk::download(r.pred.data(), m.pred(), r.pred.size());
  r.mask.resize(size_t(B) * L);
  Bk::download(r.mask.data(), m.mask(), r.mask.size());
  r.grads.resize(m.params().total);
  Bk::download(r.grads.data(), m.grads_data(), r.grads.size());
  Bk::release(dimgs);
  return r;
}

}  // namespace mae::test
