// The op cases of the harness (tests/op_harness.h): every op of src/ops/op_decls.inc, forward and backward, at a
// few shapes each — small odd ones (finite differences run on those), the model's own (timm tiny, ViT-B/16 MAE) and
// the ones that take another code path in a backend (OpenMP thresholds, the CUDA fused-attention limits, cuBLASLt
// alignment). A case names its tensors in call order with their sizes (shapes in the comments) and calls the op
// through `Bk::`, so one description runs on ref, cpu and cuda. Adding an op = one maker below + lines in
// for_each_case. test_op_harness.cpp checks that every declared op is called by some case.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <random>

#include "op_harness.h"

namespace mae::test {

// ---- generators for inputs with structure ----
inline Gen constant(double x) {
  return [=](size_t n, unsigned) { return Vec(n, x); };
}
// Rows of C with a non-zero mean and different spreads, as activations before a LayerNorm.
inline Gen shifted_rows(int C) {
  return [=](size_t n, unsigned seed) {
    Vec x = randn(n, seed);
    for (size_t i = 0; i < n; ++i) {
      const size_t r = i / C;
      x[i] = 0.5 + 0.3 * double(r) + (1.0 + 0.1 * double(r % 7)) * x[i];
    }
    return x;
  };
}
// Columns of C with different means and spreads, as features before the linear probe's BatchNorm.
inline Gen shifted_columns(int C) {
  return [=](size_t n, unsigned seed) {
    Vec x = randn(n, seed);
    for (size_t i = 0; i < n; ++i) {
      const int c = int(i % C);
      x[i] = 3.0 - 0.5 * c + (0.2 + 0.3 * (c % 5)) * x[i];
    }
    return x;
  };
}
// GELU inputs: the origin and both tails first, then N(0, 2).
inline Gen gelu_points() {
  return [](size_t n, unsigned seed) {
    Vec x = randn(n, seed, 2.0);
    const double special[] = {0.0, 1e-3, -1e-3, 5.0, -5.0, 8.0, -8.0};
    for (size_t i = 0; i < std::min(n, std::size(special)); ++i) x[i] = special[i];
    return x;
  };
}
// Per-sample drop-path scales (B): kept 1/(1 − 0.2), dropped 0, and another keep scale.
inline Gen drop_scales() {
  return [](size_t n, unsigned) {
    Vec s(n);
    for (size_t b = 0; b < n; ++b) s[b] = b % 3 == 1 ? 0.0 : b % 3 == 0 ? 1.25 : 0.7;
    return s;
  };
}
// Rows of C that are distributions: one-hot with label smoothing 0.1, or a mixup blend (λ 0.3) of two such rows.
inline Gen soft_targets(int C, bool mixup) {
  return [=](size_t n, unsigned seed) {
    std::mt19937 g(seed);
    Vec t(n, 0.1 / C);
    const double lam = mixup ? 0.3 : 1.0;
    for (size_t r = 0; r < n / C; ++r) {
      t[r * C + g() % C] += lam * 0.9;
      t[r * C + g() % C] += (1 - lam) * 0.9;
    }
    return t;
  };
}
// The official random masking of B samples of L patches: ids_shuffle = argsort(noise), ids_restore =
// argsort(ids_shuffle), mask 1 = removed (keep K). The noise depends on (B, L) only, so the three agree.
struct Masking {
  Vec ids_shuffle, ids_restore, mask;
};
inline Masking masking(int B, int L, int K) {
  const Vec noise = randn(size_t(B) * L, 7u + 131u * unsigned(B) + unsigned(L));
  Masking m{Vec(size_t(B) * L), Vec(size_t(B) * L), Vec(size_t(B) * L)};
  for (int b = 0; b < B; ++b) {
    std::vector<int> s(L);
    std::iota(s.begin(), s.end(), 0);
    std::sort(s.begin(), s.end(), [&](int i, int j) { return noise[size_t(b) * L + i] < noise[size_t(b) * L + j]; });
    for (int k = 0; k < L; ++k) {
      m.ids_shuffle[size_t(b) * L + k] = s[k];
      m.ids_restore[size_t(b) * L + s[k]] = k;
    }
    for (int l = 0; l < L; ++l) m.mask[size_t(b) * L + l] = m.ids_restore[size_t(b) * L + l] >= K ? 1.0 : 0.0;
  }
  return m;
}
inline Gen ids_shuffle(int B, int L) {
  return [=](size_t, unsigned) { return masking(B, L, L).ids_shuffle; };
}
inline Gen ids_restore(int B, int L) {
  return [=](size_t, unsigned) { return masking(B, L, L).ids_restore; };
}
inline Gen removed_mask(int B, int L, int K) {
  return [=](size_t, unsigned) { return masking(B, L, K).mask; };
}

// ---- the cases, one maker per op (or forward/backward pair) ----

// in (N, I), W (O, I) with rows of norm ~1, b (O) or none: the inputs of linear and linear_gelu.
inline CaseSpec linear_inputs(const char* family, int N, int I, int O, bool bias) {
  return CaseSpec(family, {{"N", N}, {"I", I}, {"O", O}}, bias ? "" : "nobias")
      .in("in", size_t(N) * I)
      .in("W", size_t(O) * I, normal(1 / std::sqrt(double(I))))
      .in("b", bias ? O : 0);
}

// linear: out (N, O) = in · Wᵀ + b
inline auto linear(int N, int I, int O, bool bias = true) {
  return linear_inputs("linear", N, I, O, bias)
      .out("out", size_t(N) * O)
      .ops(MAE_KERNEL { Bk::linear_forward(a.out(0), a.in(0), a.in(1), a.in(2), N, I, O); },
           MAE_KERNEL { Bk::linear_backward(a.grad(0), a.grad(1), a.grad(2), a.dout(0), a.in(0), a.in(1), N, I, O); });
}

// linear_gelu: pre (N, O) = in · Wᵀ + b, act = gelu(pre). Its backward is the one op_decls.inc names:
// dpre = dout(pre) + gelu_backward(dout(act)), then linear_backward (dpre in the workspace).
inline auto linear_gelu(int N, int I, int O, bool bias = true) {
  const size_t no = size_t(N) * O;
  return linear_inputs("linear_gelu", N, I, O, bias)
      .out("pre", no)
      .out("act", no)
      .tmp("dpre", no)
      .ops(MAE_KERNEL { Bk::linear_gelu_forward(a.out(0), a.out(1), a.in(0), a.in(1), a.in(2), N, I, O); },
           MAE_KERNEL {
             T* g = a.tmp(0);
             Bk::zero(g, no);
             Bk::add_backward(g, nullptr, a.dout(0), no);  // g = dout(pre)
             Bk::gelu_backward(g, a.dout(1), a.out(0), no);
             Bk::linear_backward(a.grad(0), a.grad(1), a.grad(2), g, a.in(0), a.in(1), N, I, O);
           });
}

// layernorm: out (N, C), mean (N), rstd (N) from in (N, C), w (C) around 1, b (C); eps 1e-6 as the model.
inline auto layernorm(int N, int C) {
  return CaseSpec("layernorm", {{"N", N}, {"C", C}})
      .in("in", size_t(N) * C, shifted_rows(C))
      .in("w", C, normal(0.2, 1.0))
      .in("b", C, normal(0.2))
      .out("out", size_t(N) * C)
      .saved("mean", N)
      .saved("rstd", N)
      .ops(MAE_KERNEL {
             Bk::layernorm_forward(a.out(0), a.out(1), a.out(2), a.in(0), a.in(1), a.in(2), N, C, T(1e-6));
           },
           MAE_KERNEL {
             Bk::layernorm_backward(a.grad(0), a.grad(1), a.grad(2), a.dout(0), a.in(0), a.in(1), a.out(1), a.out(2),
                                    N, C);
           });
}

// residual_layernorm: sum = x + [scale[b] ·] branch, out = LayerNorm(sum): x, branch, sum, out (B·Tn, C), scale (B)
// or none, w, b (C). sum may alias x or branch. Backward as op_decls.inc names it: dsum = dout(sum) +
// layernorm_backward(dout(out)), then residual_scale_backward (drop path) or add_backward.
inline auto residual_layernorm(int B, int Tn, int C, bool drop_path) {
  const size_t n = size_t(B) * Tn * C, rows = size_t(B) * Tn;
  return CaseSpec("residual_layernorm", {{"B", B}, {"Tn", Tn}, {"C", C}}, drop_path ? "droppath" : "")
      .in("x", n, normal(1.5))
      .in("branch", n)
      .param("scale", drop_path ? B : 0, drop_scales())
      .in("w", C, normal(0.2, 1.0))
      .in("b", C, normal(0.2))
      .out("sum", n)
      .out("out", n)
      .saved("mean", rows)
      .saved("rstd", rows)
      .tmp("dsum", n)
      .alias(0, 0)
      .alias(0, 1)
      .ops(MAE_KERNEL {
             Bk::residual_layernorm_forward(a.out(0), a.out(1), a.out(2), a.out(3), a.in(0), a.in(1), a.in(2),
                                            a.in(3), a.in(4), B, Tn, C, T(1e-6));
           },
           MAE_KERNEL {
             T* g = a.tmp(0);
             Bk::zero(g, n);
             Bk::add_backward(g, nullptr, a.dout(0), n);  // g = dout(sum)
             Bk::layernorm_backward(g, a.grad(3), a.grad(4), a.dout(1), a.out(0), a.in(3), a.out(2), a.out(3),
                                    B * Tn, C);
             if (a.in(2)) Bk::residual_scale_backward(a.grad(0), a.grad(1), g, a.in(2), B, size_t(Tn) * C);
             else Bk::add_backward(a.grad(0), a.grad(1), g, n);
           });
}

// gelu: out (n) = x·Φ(x); out may alias in.
inline auto gelu(size_t n) {
  return CaseSpec("gelu", {{"n", long(n)}})
      .in("in", n, gelu_points())
      .out("out", n)
      .alias(0, 0)
      .ops(MAE_KERNEL { Bk::gelu_forward(a.out(0), a.in(0), n); },
           MAE_KERNEL { Bk::gelu_backward(a.grad(0), a.dout(0), a.in(0), n); });
}

// gelu with its backward through gelu_backward_recompute (the MLP backward's op): the gradient as gelu_backward's;
// the recomputed output lands in the workspace (test_ops_dense.cpp checks it against gelu_forward).
inline auto gelu_recompute(size_t n) {
  return CaseSpec("gelu_recompute", {{"n", long(n)}})
      .in("in", n, gelu_points())
      .out("out", n)
      .tmp("act", n)
      .ops(MAE_KERNEL { Bk::gelu_forward(a.out(0), a.in(0), n); },
           MAE_KERNEL { Bk::gelu_backward_recompute(a.tmp(0), a.grad(0), a.dout(0), a.in(0), n); });
}

// add: out (n) = a + b; out may alias either.
inline auto add(size_t n) {
  return CaseSpec("add", {{"n", long(n)}})
      .in("a", n)
      .in("b", n)
      .out("out", n)
      .alias(0, 0)
      .alias(0, 1)
      .ops(MAE_KERNEL { Bk::add_forward(a.out(0), a.in(0), a.in(1), n); },
           MAE_KERNEL { Bk::add_backward(a.grad(0), a.grad(1), a.dout(0), n); });
}

// residual_scale: out (B, n) = x + scale[b] · branch, scale (B) with dropped samples; out may alias x or branch.
// Both backends compute the same expression: equal bits.
inline auto residual_scale(int B, size_t n) {
  return CaseSpec("residual_scale", {{"B", B}, {"n", long(n)}})
      .in("x", B * n)
      .in("branch", B * n)
      .param("scale", B, drop_scales())
      .out("out", B * n)
      .alias(0, 0)
      .alias(0, 1)
      .tol_cpu(0, 0)
      .ops(MAE_KERNEL { Bk::residual_scale_forward(a.out(0), a.in(0), a.in(1), a.in(2), B, n); },
           MAE_KERNEL { Bk::residual_scale_backward(a.grad(0), a.grad(1), a.dout(0), a.in(2), B, n); });
}

// attention core: qkv (B, Tn, 3D) → out (B, Tn, D), att (B, H, Tn, Tn) saved; backward's scratch (B, H, Tn, Tn).
inline auto attention(int B, int Tn, int D, int H) {
  const size_t natt = size_t(B) * H * Tn * Tn;
  return CaseSpec("attention", {{"B", B}, {"Tn", Tn}, {"D", D}, {"H", H}})
      .in("qkv", size_t(B) * Tn * 3 * D)
      .out("out", size_t(B) * Tn * D)
      .saved("att", natt)
      .tmp("scratch", natt)
      .ops(MAE_KERNEL { Bk::attention_forward(a.out(0), a.out(1), a.in(0), B, Tn, D, H); },
           MAE_KERNEL {
             Bk::attention_backward(a.grad(0), a.tmp(0), a.dout(0), a.in(0), a.out(1), B, Tn, D, H);
           });
}

// Patches: imgs (B, C, H, W) to rows (B, L, C·p·p) or back, n = B·C·H·W elements either way; `from` has a gradient
// when the op has a backward. Gathers and scatters: equal bits everywhere.
inline CaseSpec patch_case(const char* family, const char* from, const char* to, bool grad, int B, int C, int H,
                           int W, int p) {
  const size_t n = size_t(B) * C * H * W;
  CaseSpec s(family, {{"B", B}, {"C", C}, {"H", H}, {"W", W}, {"p", p}});
  (grad ? s.in(from, n) : s.param(from, n)).out(to, n).tol_cpu(0, 0).tol_cuda(0, 0);
  return s;
}
// im2patch_cij: rows in (c, i, j) order (the patch-embed conv as a linear); backward scatters back (+=).
inline auto im2patch_cij(int B, int C, int H, int W, int p) {
  return patch_case("im2patch_cij", "imgs", "rows", true, B, C, H, W, p)
      .ops(MAE_KERNEL { Bk::im2patch_cij(a.out(0), a.in(0), B, C, H, W, p); },
           MAE_KERNEL { Bk::im2patch_cij_backward(a.grad(0), a.dout(0), B, C, H, W, p); });
}
// patchify_ijc: rows in (i, j, c) order (the loss target); no backward.
inline auto patchify_ijc(int B, int C, int H, int W, int p) {
  return patch_case("patchify_ijc", "imgs", "rows", false, B, C, H, W, p)
      .ops(MAE_KERNEL { Bk::patchify_ijc(a.out(0), a.in(0), B, C, H, W, p); });
}
// unpatchify_ijc: imgs from (i, j, c) rows; no backward.
inline auto unpatchify_ijc(int B, int C, int H, int W, int p) {
  return patch_case("unpatchify_ijc", "rows", "imgs", false, B, C, H, W, p)
      .ops(MAE_KERNEL { Bk::unpatchify_ijc(a.out(0), a.in(0), B, C, H, W, p); });
}

// encoder_embed: x (B, 1+K, D) from tok (B, L, D), cls (D), pos (1+L, D) fixed, ids_shuffle (B, L).
inline auto encoder_embed(int B, int L, int K, int D) {
  return CaseSpec("encoder_embed", {{"B", B}, {"L", L}, {"K", K}, {"D", D}})
      .in("tok", size_t(B) * L * D)
      .in("cls", D)
      .param("pos", size_t(1 + L) * D)
      .idx("ids_shuffle", size_t(B) * L, ids_shuffle(B, L))
      .out("x", size_t(B) * (1 + K) * D)
      .ops(MAE_KERNEL { Bk::encoder_embed_forward(a.out(0), a.in(0), a.in(1), a.in(2), a.idx(0), B, L, K, D); },
           MAE_KERNEL { Bk::encoder_embed_backward(a.grad(0), a.grad(1), a.dout(0), a.idx(0), B, L, K, D); });
}

// decoder_embed: z (B, 1+L, E) from y (B, 1+K, E), mask_token (E), dpos (1+L, E) fixed, ids_restore (B, L).
inline auto decoder_embed(int B, int L, int K, int E) {
  return CaseSpec("decoder_embed", {{"B", B}, {"L", L}, {"K", K}, {"E", E}})
      .in("y", size_t(B) * (1 + K) * E)
      .in("mask_token", E)
      .param("dpos", size_t(1 + L) * E)
      .idx("ids_restore", size_t(B) * L, ids_restore(B, L))
      .out("z", size_t(B) * (1 + L) * E)
      .ops(MAE_KERNEL { Bk::decoder_embed_forward(a.out(0), a.in(0), a.in(1), a.in(2), a.idx(0), B, L, K, E); },
           MAE_KERNEL { Bk::decoder_embed_backward(a.grad(0), a.grad(1), a.dout(0), a.idx(0), B, L, K, E); });
}

// normalize_target: out (N, P) per row (x − mean) / sqrt(unbiased var + 1e-6); out may alias in; no backward.
inline auto normalize_target(int N, int P) {
  return CaseSpec("normalize_target", {{"N", N}, {"P", P}})
      .param("in", size_t(N) * P, normal(3.0, 1.0))
      .out("out", size_t(N) * P)
      .alias(0, 0)
      .ops(MAE_KERNEL { Bk::normalize_target(a.out(0), a.in(0), N, P); });
}

// masked_mse: loss from pred (B, 1+L, P) (cls rows ignored), target (B, L, P), mask (B, L) with K kept per sample.
inline auto masked_mse(int B, int L, int P, int K) {
  return CaseSpec("masked_mse", {{"B", B}, {"L", L}, {"P", P}, {"K", K}})
      .in("pred", size_t(B) * (1 + L) * P)
      .param("target", size_t(B) * L * P, normal(2.0))
      .param("mask", size_t(B) * L, removed_mask(B, L, K))
      .ret("loss")
      .tol_fd(1e-6, 1e-9)  // gradients ~1/(P·Σmask): an absolute floor at their scale
      .ops(MAE_KERNEL { a.ret(0) = Bk::masked_mse_forward(a.in(0), a.in(1), a.in(2), B, L, P); },
           MAE_KERNEL { Bk::masked_mse_backward(a.grad(0), a.dret(0), a.in(0), a.in(1), a.in(2), B, L, P); });
}

// softmax_xent: loss and probs (N, C) from logits (N, C) and soft targets (N, C).
inline auto softmax_xent(int N, int C, bool mixup) {
  return CaseSpec("softmax_xent", {{"N", N}, {"C", C}}, mixup ? "mixup" : "smoothing")
      .in("logits", size_t(N) * C, normal(3.0))
      .param("targets", size_t(N) * C, soft_targets(C, mixup))
      .saved("probs", size_t(N) * C)
      .ret("loss")
      .tol_cpu(1e-12, 1e-6)
      .tol_fd(1e-6, 1e-9)
      .ops(MAE_KERNEL { a.ret(0) = Bk::softmax_xent_forward(a.out(0), a.in(0), a.in(1), N, C); },
           MAE_KERNEL { Bk::softmax_xent_backward(a.grad(0), a.dret(0), a.out(0), a.in(1), N, C); });
}

// batchnorm1d_train: out (N, C), mean, rstd (C) saved, running stats (C) updated (momentum 0.1), eps 1e-6.
inline auto batchnorm1d_train(int N, int C) {
  return CaseSpec("batchnorm1d_train", {{"N", N}, {"C", C}})
      .in("in", size_t(N) * C, shifted_columns(C))
      .io("running_mean", C)
      .io("running_var", C, uniform(0.5, 2.0))
      .out("out", size_t(N) * C)
      .saved("mean", C)
      .saved("rstd", C)
      .tol_cpu(1e-12, 2e-5)
      .ops(MAE_KERNEL {
             Bk::batchnorm1d_train_forward(a.out(0), a.out(1), a.out(2), a.io(0), a.io(1), a.in(0), N, C, T(1e-6),
                                           T(0.1));
           },
           MAE_KERNEL { Bk::batchnorm1d_backward(a.grad(0), a.dout(0), a.in(0), a.out(1), a.out(2), N, C); });
}
// batchnorm1d_eval: out (N, C) from the running stats; no backward.
inline auto batchnorm1d_eval(int N, int C) {
  return CaseSpec("batchnorm1d_eval", {{"N", N}, {"C", C}})
      .param("in", size_t(N) * C, shifted_columns(C))
      .param("running_mean", C, normal(1.0, 2.0))
      .param("running_var", C, uniform(0.5, 2.0))
      .out("out", size_t(N) * C)
      .tol_cpu(1e-12, 2e-5)
      .ops(MAE_KERNEL { Bk::batchnorm1d_eval_forward(a.out(0), a.in(0), a.in(1), a.in(2), N, C, T(1e-6)); });
}

// adamw_update: p, m, v (n) updated from g (n) at step t (the pretraining recipe's hyper-parameters); t = 1 starts
// from zero moments, later steps from earlier ones.
inline auto adamw_update(size_t n, long t) {
  return CaseSpec("adamw_update", {{"n", long(n)}, {"t", t}})
      .param("g", n, normal(0.1))
      .io("p", n)
      .io("m", n, t == 1 ? constant(0) : normal(0.01))
      .io("v", n, t == 1 ? constant(0) : uniform(0, 1e-3))
      .tol_cpu(1e-13, 1e-6)
      .ops(MAE_KERNEL {
        Bk::adamw_update(a.io(0), a.io(1), a.io(2), a.in(0), n, 1.5e-4f, 0.9f, 0.95f, 1e-8f, 0.05f, t);
      });
}

// vit_embed: x (B, 1+L, D) = cat(cls, tok) + pos, every one learned. The forward is the same expression in both
// backends: equal bits.
inline auto vit_embed(int B, int L, int D) {
  return CaseSpec("vit_embed", {{"B", B}, {"L", L}, {"D", D}})
      .in("tok", size_t(B) * L * D)
      .in("cls", D)
      .in("pos", size_t(1 + L) * D)
      .out("x", size_t(B) * (1 + L) * D)
      .tol_cpu_fwd(0, 0)
      .ops(MAE_KERNEL { Bk::vit_embed_forward(a.out(0), a.in(0), a.in(1), a.in(2), B, L, D); },
           MAE_KERNEL { Bk::vit_embed_backward(a.grad(0), a.grad(1), a.grad(2), a.dout(0), B, L, D); });
}

// token_pool: out (B, D) = mean of the patch tokens of x (B, Tn, D), or its cls token. Equal bits in both backends.
inline auto token_pool(int B, int Tn, int D, bool mean) {
  return CaseSpec("token_pool", {{"B", B}, {"Tn", Tn}, {"D", D}}, mean ? "mean" : "cls")
      .in("x", size_t(B) * Tn * D)
      .out("out", size_t(B) * D)
      .tol_cpu(0, 0)
      .ops(MAE_KERNEL { Bk::token_pool_forward(a.out(0), a.in(0), B, Tn, D, mean); },
           MAE_KERNEL { Bk::token_pool_backward(a.grad(0), a.dout(0), B, Tn, D, mean); });
}

// ---- the list: emit(case) for each ----
template <size_t K> using Shapes = std::initializer_list<std::array<int, K>>;

template <class Emit> void for_each_case(Emit&& emit) {
  // timm tiny qkv (197 tokens, 192 → 576); 301 × 96 → 384 is aligned for CUDA's cuBLASLt bf16 path
  for (auto [N, I, O] : Shapes<3>{{5, 7, 3}, {1, 1, 1}, {37, 29, 23}, {197, 192, 576}, {301, 97, 131}, {301, 96, 384}})
    emit(linear(N, I, O));
  for (auto [N, I, O] : Shapes<3>{{5, 7, 3}, {5, 3, 1}, {197, 192, 576}}) emit(linear(N, I, O, false));
  emit(linear_gelu(4, 5, 6));
  emit(linear_gelu(5, 3, 1, false));
  emit(linear_gelu(37, 29, 23));
  emit(linear_gelu(301, 96, 384));
  for (auto [N, C] : Shapes<2>{{5, 11}, {3, 1}, {33, 77}, {197, 192}}) emit(layernorm(N, C));
  // (5, 13, 129) and (4, 50, 768): past the CPU's OpenMP threshold; C 768: ViT-B
  for (auto [B, Tn, C] : Shapes<3>{{3, 4, 6}, {5, 13, 129}, {4, 50, 768}})
    for (bool drop : {false, true}) emit(residual_layernorm(B, Tn, C, drop));
  emit(residual_layernorm(3, 7, 77, false));
  for (size_t n : {size_t(13), size_t(1001), size_t(197 * 768)}) emit(gelu(n));  // 197·768: tiny's MLP hidden
  for (size_t n : {size_t(13), size_t(50 * 1536)}) emit(gelu_recompute(n));
  for (size_t n : {size_t(13), size_t(1001), size_t(3 * 197 * 192)}) emit(add(n));
  emit(residual_scale(3, 7));
  emit(residual_scale(7, 143));
  emit(residual_scale(5, 40000));  // OpenMP path
  // Small odd shapes, one token (Tn 1), one head; then the CUDA paths: the fused kernel up to 256 tokens and head
  // dim 128 (Tn 33: one warp of keys and one more; 50: ViT-B/16 encoder at mask 0.75; 197: decoder, head dim 32),
  // the cuBLAS fallback beyond (head dim 130, 257 tokens).
  for (auto [B, Tn, D, H] : Shapes<4>{{2, 7, 15, 3}, {1, 5, 8, 1}, {3, 1, 6, 2}, {2, 13, 128, 4}, {2, 33, 40, 5},
                             {2, 50, 96, 4}, {4, 50, 192, 3}, {2, 197, 128, 4}, {1, 65, 260, 2}, {1, 257, 32, 1}})
    emit(attention(B, Tn, D, H));
  // 9 × 12 with p 3: a non-square grid of odd patches; 28 × 28 p 4: Fashion-MNIST; 224 p 16: ViT-B/16
  for (auto [B, C, H, W, p] : Shapes<5>{{2, 3, 9, 12, 3}, {1, 1, 28, 28, 4}, {2, 3, 12, 8, 4}, {2, 3, 224, 224, 16}})
    emit(im2patch_cij(B, C, H, W, p));
  for (auto [B, C, H, W, p] : Shapes<5>{{2, 3, 9, 12, 3}, {2, 3, 12, 8, 4}, {2, 3, 224, 224, 16}}) {
    emit(patchify_ijc(B, C, H, W, p));
    emit(unpatchify_ijc(B, C, H, W, p));
  }
  // K from one kept patch to all kept; 196 patches keeping 49: ViT-B/16 at mask 0.75; E 200: past the CPU's
  // column block of the mask-token sum
  for (int K : {1, 4, 11, 12}) {
    emit(encoder_embed(2, 12, K, 5));
    emit(decoder_embed(2, 12, K, 3));
  }
  emit(encoder_embed(3, 11, 4, 37));
  emit(encoder_embed(4, 196, 49, 192));
  emit(decoder_embed(3, 11, 4, 19));
  emit(decoder_embed(4, 196, 49, 128));
  emit(decoder_embed(3, 49, 12, 200));
  for (auto [N, P] : Shapes<2>{{24, 27}, {51, 45}, {784, 768}}) emit(normalize_target(N, P));
  for (auto [B, L, P, K] : Shapes<4>{{2, 12, 27, 3}, {2, 12, 27, 9}, {3, 17, 45, 7}, {3, 49, 16, 12},
                            {4, 196, 768, 49}})
    emit(masked_mse(B, L, P, K));
  emit(softmax_xent(5, 7, false));
  emit(softmax_xent(5, 7, true));
  emit(softmax_xent(1, 1, false));
  emit(softmax_xent(3, 2, true));
  emit(softmax_xent(19, 13, true));
  emit(softmax_xent(300, 10, false));
  emit(softmax_xent(512, 1000, true));  // ImageNet classes
  for (auto [N, C] : Shapes<2>{{5, 7}, {2, 3}, {9, 1}, {19, 13}, {256, 65}, {512, 384}}) emit(batchnorm1d_train(N, C));
  for (auto [N, C] : Shapes<2>{{5, 7}, {19, 13}, {512, 384}}) emit(batchnorm1d_eval(N, C));
  emit(adamw_update(13, 1));
  emit(adamw_update(10007, 3));
  emit(adamw_update(197 * 192, 7));
  emit(vit_embed(3, 5, 7));
  emit(vit_embed(3, 7, 11));
  emit(vit_embed(9, 196, 40));  // OpenMP path
  for (bool mean : {true, false}) {
    emit(token_pool(3, 6, 5, mean));
    emit(token_pool(8, 197, 48, mean));
  }
}

}  // namespace mae::test
