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

template <class Bk> ModelRun run_model(const std::string& stem, bool norm_pix, double ratio) {
  io::SafeTensorsReader wf(stem + ".weights.safetensors"), in(stem + ".input.safetensors");
  ModelConfig cfg = read_config(wf);
  cfg.norm_pix_loss = norm_pix;
  std::vector<int64_t> ishape;
  const auto imgs = in.read_f32("imgs", &ishape);
  const auto noise = in.read_f32("noise");
  const int B = int(ishape[0]);
  MaeModel<Bk> m(cfg, B, ratio);
  std::vector<float> host(m.params().total, 0.f);
  load_params(wf, m.params(), host.data());
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
