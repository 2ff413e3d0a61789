#include "model/vit_blocks.h"

#include <algorithm>
#include <exception>

#include "core/error.h"
#include "core/rng.h"
#include "ops/backend.h"

namespace mae {

template <class Bk>
void BlockStack<Bk>::bind(const ParamList& list, const std::string& prefix, int depth, T* params, T* grads, int D,
                          int H, int hidden, double ln_eps) {
  D_ = D, H_ = H, hidden_ = hidden, eps_ = T(ln_eps);
  w_.clear(), g_.clear();
  for (int i = 0; i < depth; ++i) {
    const std::string pre = prefix + std::to_string(i) + ".";
    auto ptrs = [&](T* base) {
      auto p = [&](const char* n) { return base + list.find(pre + n).offset; };
      return Weights{p("norm1.weight"),    p("norm1.bias"),     p("attn.qkv.weight"), p("attn.qkv.bias"),
                     p("attn.proj.weight"), p("attn.proj.bias"), p("norm2.weight"),    p("norm2.bias"),
                     p("mlp.fc1.weight"),  p("mlp.fc1.bias"),   p("mlp.fc2.weight"),  p("mlp.fc2.bias")};
    };
    w_.push_back(ptrs(params));
    if (grads) g_.push_back(ptrs(grads));
  }
  // Where the stack's gradients lie: blocks.0. ... blocks.N. are consecutive in every ParamList we build (the
  // official state_dict order); the span is checked against their size rather than assumed. (The gaps are the
  // ParamList's alignment padding: zeros, which the runs' sums leave zero.)
  g_lo_ = nullptr, g_span_ = 0;
  if (grads && depth > 0) {
    const size_t sizes[12] = {size_t(D), size_t(D),     size_t(3) * D * D, size_t(3) * D, size_t(D) * D,
                              size_t(D), size_t(D),     size_t(D),         size_t(hidden) * D, size_t(hidden),
                              size_t(D) * hidden, size_t(D)};
    T *lo = g_[0].ln1w, *hi = lo;
    size_t total = 0;
    for (const Weights& g : g_) {
      T* const p[12] = {g.ln1w, g.ln1b, g.qkvw, g.qkvb, g.projw, g.projb, g.ln2w, g.ln2b, g.fc1w, g.fc1b, g.fc2w, g.fc2b};
      for (int k = 0; k < 12; ++k) {
        lo = std::min(lo, p[k]);
        hi = std::max(hi, p[k] + sizes[k]);
        total += (sizes[k] + 15) / 16 * 16;  // the ParamList keeps every tensor 16-element aligned
      }
    }
    if (size_t(hi - lo) <= total) g_lo_ = lo, g_span_ = size_t(hi - lo);
  }
}

template <class Bk>
typename BlockStack<Bk>::Weights BlockStack<Bk>::rebase(const Weights& g, T* base) const {
  auto r = [&](T* p) { return base + (p - g_lo_); };
  return Weights{r(g.ln1w),  r(g.ln1b), r(g.qkvw), r(g.qkvb), r(g.projw), r(g.projb),
                 r(g.ln2w),  r(g.ln2b), r(g.fc1w), r(g.fc1b), r(g.fc2w),  r(g.fc2b)};
}

template <class Bk> void BlockStack<Bk>::set_drop_path_rate(double rate) {
  if (!(rate >= 0 && rate < 1)) fail("drop path rate must be in [0, 1), got ", rate);
  if (batch_ > 0 && (rate > 0) != (rate_ > 0)) fail("BlockStack: set the drop path rate before planning");
  rate_ = rate;
}

template <class Bk> double BlockStack<Bk>::block_rate(int i) const {
  // [x.item() for x in torch.linspace(0, drop_path_rate, depth)]
  const int n = depth();
  if (n <= 1) return 0.0;
  return rate_ * double(i) / double(n - 1);
}

template <class Bk> void BlockStack<Bk>::plan(ArenaRequests<T>& req, int batch, int Tn, ModelMode mode) {
  batch_ = batch, Tn_ = Tn;  // rows checked by the owner before it allocated anything (check_batch_rows)
  const size_t N = size_t(batch) * Tn, D = D_, Hd = hidden_;
  // Inference: one set for all blocks (block i reads x = block i−1's xout for norm1 and the first residual, both
  // before it writes its own xout: aliasing them is safe).
  shared_acts_ = mode == ModelMode::inference;
  a_.assign(shared_acts_ ? std::min<size_t>(w_.size(), 1) : w_.size(), Acts{});
  for (auto& a : a_) {
    req.push_back({&a.ln1_mean, N});
    req.push_back({&a.ln1_rstd, N});
    req.push_back({&a.qkv, N * 3 * D});
    req.push_back({&a.att, size_t(batch) * H_ * Tn * Tn});
    req.push_back({&a.atty, N * D});
    req.push_back({&a.xmid, N * D});
    req.push_back({&a.ln2_mean, N});
    req.push_back({&a.ln2_rstd, N});
    req.push_back({&a.fc1, N * Hd});
    req.push_back({&a.xout, N * D});
  }
  if (rate_ > 0) {
    req.push_back({&scale_, w_.size() * 2 * size_t(batch)});
    host_scale_.assign(w_.size() * 2 * size_t(batch), T(1));
  }
}

template <class Bk> typename BlockScratch<typename Bk::T>::Size BlockStack<Bk>::scratch_size() const {
  typename BlockScratch<T>::Size s;
  const size_t N = size_t(batch_) * Tn_;
  s.nd = N * D_;
  s.nh = N * hidden_;
  s.att = size_t(batch_) * H_ * Tn_ * Tn_;
  s.drop_path = rate_ > 0;
  // Room for the tiled backward's extra runs, as many as threads tile the planned batch (a smaller batch has no
  // more tiles). Planned from the threads at construction; more threads later only run fewer runs than threads.
  const int tiles = !shared_acts_ && g_span_ > 0 ? forward_tiles(batch_) : 1;
  if (tiles > 1) s.run_grads = size_t(std::min(tile_threads(), tiles) - 1) * g_span_;
  return s;
}

template <class Bk> void BlockStack<Bk>::draw_drop_path(uint64_t key, uint64_t a, const int64_t* ids, int B) {
  MAE_CHECK(rate_ > 0 && B <= batch_, "draw_drop_path without drop path or batch ", B, " > ", batch_);
  const size_t stride = size_t(batch_);
  for (int b = 0; b < B; ++b) {
    Rng r = Rng::keyed(key, a, uint64_t(ids[b]));
    for (int i = 0; i < depth(); ++i) {
      const double p = block_rate(i), keep = 1.0 - p;
      for (int br = 0; br < 2; ++br) {
        const double u = r.uniform();
        // timm: random_tensor = floor(keep_prob + rand); x.div(keep_prob) * random_tensor
        host_scale_[(size_t(i) * 2 + br) * stride + b] = u >= p ? T(1.0 / keep) : T(0);
      }
    }
  }
  Bk::upload(scale_, host_scale_.data(), host_scale_.size());
}

template <class Bk> void BlockStack<Bk>::set_drop_scales(const T* host, int B) {
  MAE_CHECK(rate_ > 0 && B <= batch_, "set_drop_scales without drop path or batch ", B, " > ", batch_);
  for (size_t ib = 0; ib < w_.size() * 2; ++ib)
    for (int b = 0; b < B; ++b) host_scale_[ib * size_t(batch_) + b] = host[ib * size_t(B) + b];
  Bk::upload(scale_, host_scale_.data(), host_scale_.size());
}

// ---- one timm Block: x = x + drop_path(attn(norm1(x))); x = x + drop_path(mlp(norm2(x))) ----
// Each residual add is fused with the LayerNorm that reads its result: the attention residual with norm2, the MLP
// residual with the NEXT block's norm1 (so block i+1 starts with norm1(x) already in s.lnout; `ln1_done`). The last
// block's MLP residual is a plain add (the owner's final norm follows).
template <class Bk> void BlockStack<Bk>::block_forward(int i, const T* x, int b0, int B, bool ln1_done) {
  const Weights& w = w_[size_t(i)];
  const Acts& a = acts(i);
  const BlockScratch<T>& s = *scratch_;
  const int N = B * Tn_, D = D_, Hd = hidden_;
  // Samples [b0, b0 + B): row r0 onwards of every (rows, ·) buffer, sample b0 onwards of att and the scales.
  const size_t r0 = size_t(b0) * Tn_, rd = r0 * D, rh = r0 * Hd;
  x += rd;
  T *lnout = s.lnout + rd, *act = s.act + rh, *qkv = a.qkv + 3 * rd, *att = a.att + size_t(b0) * H_ * Tn_ * Tn_;
  T *atty = a.atty + rd, *xmid = a.xmid + rd, *fc1 = a.fc1 + rh, *xout = a.xout + rd;
  T *ln1_mean = a.ln1_mean + r0, *ln1_rstd = a.ln1_rstd + r0, *ln2_mean = a.ln2_mean + r0, *ln2_rstd = a.ln2_rstd + r0;
  auto drop = [&](int branch) { return drops(i) ? scale(i, branch) + b0 : nullptr; };
  if (!ln1_done) Bk::layernorm_forward(lnout, ln1_mean, ln1_rstd, x, w.ln1w, w.ln1b, N, D, eps_);  // (N, D)
  Bk::linear_forward(qkv, lnout, w.qkvw, w.qkvb, N, D, 3 * D);                                // (N, 3D)
  Bk::attention_forward(atty, att, qkv, B, Tn_, D, H_);                                       // (N, D), att (B,H,Tn,Tn)
  Bk::linear_forward(xmid, atty, w.projw, w.projb, N, D, D);                                  // proj
  // xmid = x + drop_path(attn(...)), lnout = norm2(xmid)
  Bk::residual_layernorm_forward(xmid, lnout, ln2_mean, ln2_rstd, x, xmid, drop(0), w.ln2w, w.ln2b, B, Tn_, D, eps_);
  Bk::linear_gelu_forward(fc1, act, lnout, w.fc1w, w.fc1b, N, D, Hd);  // fc1 (N, Hd) kept, act = gelu(fc1)
  Bk::linear_forward(xout, act, w.fc2w, w.fc2b, N, Hd, D);             // (N, D)
  // xout = xmid + drop_path(mlp(...))
  const T* sc = drop(1);
  if (i + 1 < depth()) {  // ... and lnout = the next block's norm1(xout)
    const Weights& wn = w_[size_t(i + 1)];
    const Acts& an = acts(i + 1);
    Bk::residual_layernorm_forward(xout, lnout, an.ln1_mean + r0, an.ln1_rstd + r0, xmid, xout, sc, wn.ln1w, wn.ln1b,
                                   B, Tn_, D, eps_);
  } else if (sc) {
    Bk::residual_scale_forward(xout, xmid, xout, sc, B, size_t(Tn_) * D);
  } else {
    Bk::add_forward(xout, xout, xmid, size_t(N) * D);
  }
}

// dres holds ∂loss/∂xout on entry and ∂loss/∂x on exit: both residual branches accumulate into it in place.
// Under drop path the branch sees scale ⊙ dres (in s.branch) while the skip connection passes dres unchanged.
template <class Bk>
void BlockStack<Bk>::block_backward(int i, const T* x, T* dres, int b0, int B, const Weights& g) {
  const Weights& w = w_[size_t(i)];
  const Acts& a = acts(i);
  const BlockScratch<T>& s = *scratch_;
  const int N = B * Tn_, D = D_, Hd = hidden_;
  const size_t nd = size_t(N) * D, nh = size_t(N) * Hd, per = size_t(Tn_) * D;
  // Samples [b0, b0 + B): row r0 onwards of every (rows, ·) buffer, sample b0 onwards of att and the scales.
  const size_t r0 = size_t(b0) * Tn_, rd = r0 * D, rh = r0 * Hd, ra = size_t(b0) * H_ * Tn_ * Tn_;
  x += rd, dres += rd;
  T *lnout = s.lnout + rd, *act = s.act + rh, *dln = s.ln + rd, *dqkv = s.qkv + 3 * rd, *datty = s.atty + rd;
  T *dfc1 = s.fc1 + rh, *dgelu = s.gelu + rh, *datt = s.att + ra, *branch = s.branch ? s.branch + rd : nullptr;
  const T *qkv = a.qkv + 3 * rd, *att = a.att + ra, *atty = a.atty + rd, *xmid = a.xmid + rd, *fc1 = a.fc1 + rh;
  T *ln1_mean = a.ln1_mean + r0, *ln1_rstd = a.ln1_rstd + r0, *ln2_mean = a.ln2_mean + r0, *ln2_rstd = a.ln2_rstd + r0;
  const bool dp = drops(i);
  // mlp branch
  const T* dmlp = dres;
  if (dp) {
    Bk::zero(branch, nd);
    Bk::residual_scale_backward(nullptr, branch, dres, scale(i, 1) + b0, B, per);
    dmlp = branch;
  }
  // fc2's input gradient first (it does not need fc2's input); the GELU gradient pass then recomputes that input,
  // gelu(fc1), on its way through fc1, for fc2's weight gradient: one pass over (N, Hd) instead of two.
  Bk::zero(dgelu, nh);
  Bk::linear_backward(dgelu, nullptr, nullptr, dmlp, nullptr, w.fc2w, N, Hd, D);  // no dW: `in` is not read
  Bk::zero(dfc1, nh);
  Bk::gelu_backward_recompute(act, dfc1, dgelu, fc1, nh);
  Bk::linear_backward(nullptr, g.fc2w, g.fc2b, dmlp, act, w.fc2w, N, Hd, D);
  // norm2(xmid) recomputed: the same kernel on the same input rewrites the same mean/rstd and output
  Bk::layernorm_forward(lnout, ln2_mean, ln2_rstd, xmid, w.ln2w, w.ln2b, N, D, eps_);
  Bk::zero(dln, nd);
  Bk::linear_backward(dln, g.fc1w, g.fc1b, dfc1, lnout, w.fc1w, N, D, Hd);
  Bk::layernorm_backward(dres, g.ln2w, g.ln2b, dln, xmid, w.ln2w, ln2_mean, ln2_rstd, N, D);
  // attention branch
  const T* dattn = dres;
  if (dp) {
    Bk::zero(branch, nd);
    Bk::residual_scale_backward(nullptr, branch, dres, scale(i, 0) + b0, B, per);
    dattn = branch;
  }
  Bk::zero(datty, nd);
  Bk::linear_backward(datty, g.projw, g.projb, dattn, atty, w.projw, N, D, D);
  Bk::zero(dqkv, 3 * nd);
  Bk::attention_backward(dqkv, datt, datty, qkv, att, B, Tn_, D, H_);
  Bk::layernorm_forward(lnout, ln1_mean, ln1_rstd, x, w.ln1w, w.ln1b, N, D, eps_);  // norm1(x) recomputed
  Bk::zero(dln, nd);
  Bk::linear_backward(dln, g.qkvw, g.qkvb, dqkv, lnout, w.qkvw, N, D, 3 * D);
  Bk::layernorm_backward(dres, g.ln1w, g.ln1b, dln, x, w.ln1w, ln1_mean, ln1_rstd, N, D);
}

template <class Bk> void BlockStack<Bk>::blocks_backward(const T* x0, T* dres, int b0, int B, T* grads) {
  for (int i = depth() - 1; i >= 0; --i) {
    const Weights& g = g_[size_t(i)];
    block_backward(i, i == 0 ? x0 : acts(i - 1).xout, dres, b0, B, grads ? rebase(g, grads) : g);
  }
}

template <class Bk> void BlockStack<Bk>::blocks_forward(const T* x0, int b0, int B) {
  for (int i = 0; i < depth(); ++i) block_forward(i, i == 0 ? x0 : acts(i - 1).xout, b0, B, /*ln1_done=*/i > 0);
}

template <class Bk> uint64_t BlockStack<Bk>::frozen_weights_version() {
  if constexpr (requires { Bk::frozen_weights_version(); }) return Bk::frozen_weights_version();
  return 0;
}

template <class Bk> int BlockStack<Bk>::tile_threads() const {
  if constexpr (requires { Bk::row_tile_threads(); }) return Bk::row_tile_threads();
  return 1;
}

template <class Bk> int BlockStack<Bk>::forward_tiles(int B) const {
  const int threads = tile_threads();
  if (threads <= 1) return 1;
  // Tiles pay where a block's ops are short and many (narrow blocks, few tokens: the 28-px models' forward +10–19 %,
  // their training step +1–9 %; bench/results/cpu-zen3-20261206.md §8). Every tile re-reads the weights, so only
  // blocks whose weights (12·D² floats) fit in 4 MiB tile, in tiles of at least kTileRows rows (single-threaded
  // GEMMs need rows), and enough of them (two a thread, handed out as threads free up) that a slow core does not
  // hold the others back. ViT-B and the 224-px decoders stay untiled: in tiles of one sample ViT-B's forward lost 9 %.
  constexpr int64_t kTileRows = 512, kMaxWeightBytes = int64_t(4) << 20;
  if (12 * int64_t(D_) * D_ * int64_t(sizeof(T)) > kMaxWeightBytes) return 1;
  const int64_t tiles = std::min<int64_t>(B, int64_t(B) * Tn_ / kTileRows);
  return tiles >= 2 * int64_t(threads) ? int(tiles) : 1;
}

template <class Bk> const typename Bk::T* BlockStack<Bk>::forward(const T* x0, int B) {
  MAE_CHECK(B >= 1 && B <= batch_, "BlockStack::forward batch ", B, " (planned ", batch_, ")");
  MAE_CHECK(scratch_ != nullptr, "BlockStack::forward without scratch");
  if (depth() == 0) return x0;
  const int tiles = forward_tiles(B);
  if (tiles == 1) {
    blocks_forward(x0, 0, B);
  } else {
    std::exception_ptr error;  // an exception must not leave the parallel region
    // The caller's FrozenWeights scope (an inference model's forward) is per thread: every tile runs inside it, or a
    // tile's result would depend on the thread that took it (ops/cpu/precision.h: inference_onednn).
    const uint64_t frozen = frozen_weights_version();
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < tiles; ++t) {
      const int b0 = int(int64_t(B) * t / tiles), b1 = int(int64_t(B) * (t + 1) / tiles);
      try {
        const typename Bk::FrozenWeights scope(frozen);
        blocks_forward(x0, b0, b1 - b0);
      } catch (...) {
#pragma omp critical(mae_block_tiles)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  }
  return acts(depth() - 1).xout;
}

template <class Bk> void BlockStack<Bk>::backward(const T* x0, T* dres, int B) {
  MAE_CHECK(B >= 1 && B <= batch_, "BlockStack::backward batch ", B, " (planned ", batch_, ")");
  MAE_CHECK(scratch_ != nullptr, "BlockStack::backward without scratch");
  MAE_CHECK(!shared_acts_ && g_.size() == w_.size(), "BlockStack::backward on an inference model");
  MAE_CHECK(!drop_path_active() || scratch_->branch != nullptr, "BlockStack::backward: no drop-path scratch");
  if (depth() == 0) return;
  const int tiles = backward_tiles(B);
  if (tiles == 1) return blocks_backward(x0, dres, 0, B, nullptr);
  // Runs of consecutive tiles, one a thread: run r takes tiles [r·tiles/runs, (r+1)·tiles/runs) in order, its
  // weight gradients into its own buffer, so every sum has one order whichever thread runs it. (Per-tile buffers
  // would let threads take tiles as they free up, as the forward does, but cost a gradient copy per tile.)
  const int runs = std::min({tile_threads(), tiles, 1 + run_slots()});
  T* const rg = scratch_->run_grads;  // run r ≥ 1 at rg + (r − 1)·g_span_
  std::exception_ptr error;  // an exception must not leave the parallel region
#pragma omp parallel for schedule(static, 1)
  for (int r = 0; r < runs; ++r) {
    try {
      T* grads = r == 0 ? nullptr : rg + size_t(r - 1) * g_span_;
      if (grads) Bk::zero(grads, g_span_);
      for (int t = int(int64_t(tiles) * r / runs); t < int(int64_t(tiles) * (r + 1) / runs); ++t) {
        const int b0 = int(int64_t(B) * t / tiles), b1 = int(int64_t(B) * (t + 1) / tiles);
        blocks_backward(x0, dres, b0, b1 - b0, grads);
      }
    } catch (...) {
#pragma omp critical(mae_block_tiles)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  // The runs' gradients into the stack's, in run order (each element summed alone: any thread split is the same).
  T* g = g_lo_;
  const size_t span = g_span_;
#pragma omp parallel for schedule(static)
  for (size_t e = 0; e < span; ++e) {
    T v = g[e];
    for (int r = 1; r < runs; ++r) v += rg[size_t(r - 1) * span + e];
    g[e] = v;
  }
}

template <class Bk> double BlockStack<Bk>::forward_flops(int B) const {
  return blocks_flops(B, Tn_, D_, hidden_, depth());
}

#ifndef MAE_MODEL_TEMPLATES_ONLY  // set by model/model_cuda.cpp, which instantiates the CUDA model
template class BlockStack<CpuBackend<float>>;
template class BlockStack<CpuBackend<double>>;
template class BlockStack<RefBackend<float>>;
template class BlockStack<RefBackend<double>>;
#endif

}  // namespace mae
