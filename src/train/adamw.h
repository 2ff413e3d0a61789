// AdamW over the flat parameter buffer with the official parameter groups (ParamSpec::decay): one fused
// update pass per tensor, weight decay only where the official optim_factory.add_weight_decay applies it.
#pragma once
#include <vector>

#include "model/params.h"
#include "ops/adamw_segment.h"

namespace mae {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f;  // main_pretrain.py: betas=(0.9, 0.95)
  float eps = 1e-8f;
  float weight_decay = 0.05f;
};

// t: the step count after this update (1 for the first). m, v: moments laid out like params.
template <class Bk>
void adamw_step(const ParamList& list, typename Bk::T* params, typename Bk::T* m, typename Bk::T* v,
                const typename Bk::T* grads, float lr, const AdamWConfig& cfg, long t) {
  if constexpr (requires { &Bk::adamw_step_flat; }) {  // a backend with one kernel over the flat buffer (CUDA)
    // Rebuilt every call (a few hundred entries): a cache keyed on the list's address could outlive the list.
    thread_local std::vector<AdamWSegment> segs;
    segs.clear();
    for (const auto& s : list.specs) segs.push_back({s.offset, s.numel, s.decay});
    Bk::adamw_step_flat(segs.data(), int(segs.size()), &list, params, m, v, grads, lr, cfg.beta1, cfg.beta2, cfg.eps,
                        cfg.weight_decay, t);
    return;
  }
  for (const auto& s : list.specs)
    Bk::adamw_update(params + s.offset, m + s.offset, v + s.offset, grads + s.offset, s.numel, lr, cfg.beta1,
                     cfg.beta2, cfg.eps, s.decay ? cfg.weight_decay : 0.0f, t);
}

}  // namespace mae
