#include "cli/gemm_limit.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <tuple>

#include "core/host_alloc.h"
#include "ops/cpu/gemm.h"

namespace mae::cli {

std::vector<GemmCall> mae_step_gemms(const ModelConfig& c, int B, int len_keep) {
  std::map<std::tuple<bool, bool, int, int, int>, int> n;
  // A linear layer in → out on `rows` rows, `times` of them: forward out = in·Wᵀ, din = dout·W, dW = doutᵀ·in.
  auto layer = [&](int rows, int in, int out, int times, bool din) {
    n[{false, true, rows, out, in}] += times;
    if (din) n[{false, false, rows, in, out}] += times;
    n[{true, false, out, in, rows}] += times;
  };
  const int D = c.embed_dim, E = c.decoder_embed_dim, L = c.num_patches();
  const int ne = B * (1 + len_keep), nd = B * (1 + L);
  layer(B * L, c.patch_dim(), D, 1, false);  // patch embedding (a conv with stride = kernel)
  for (auto [rows, w, hidden, depth] : {std::tuple{ne, D, c.mlp_hidden(), c.depth},
                                        std::tuple{nd, E, c.decoder_mlp_hidden(), c.decoder_depth}}) {
    layer(rows, w, 3 * w, depth, true);  // qkv
    layer(rows, w, w, depth, true);      // proj
    layer(rows, w, hidden, depth, true);  // fc1
    layer(rows, hidden, w, depth, true);  // fc2
  }
  layer(ne, D, E, 1, true);              // decoder_embed
  layer(nd, E, c.patch_dim(), 1, true);  // decoder_pred
  std::vector<GemmCall> v;
  for (const auto& [k, count] : n) v.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k),
                                                std::get<4>(k), count});
  return v;
}

GemmLimit::GemmLimit(std::vector<GemmCall> calls) : calls_(std::move(calls)) {
  size_t a = 0, b = 0, c = 0;
  for (const GemmCall& g : calls_) {
    a = std::max(a, size_t(g.M) * g.K), b = std::max(b, size_t(g.K) * g.N), c = std::max(c, size_t(g.M) * g.N);
  }
  a_ = host_alloc_array<float>(a), b_ = host_alloc_array<float>(b), c_ = host_alloc_array<float>(c);
  // Small normal numbers (zeros could take a shortcut, denormals a slow path); C stays bounded: each round adds
  // the same product to it a few times.
  std::fill(a_, a_ + a, 0.01f), std::fill(b_, b_ + b, 0.02f);
}

GemmLimit::~GemmLimit() {
  host_free(a_), host_free(b_), host_free(c_);
}

double GemmLimit::run() const {
  double total = 0;
  for (const GemmCall& g : calls_) {
    const auto t0 = std::chrono::steady_clock::now();
    // Row-major strides as stored: A is (M, K) or, transposed, (K, M); B is (K, N) or (N, K). beta = 1: the
    // step's products accumulate (forward onto the bias, backward into gradients).
    cpu::gemm<float>(g.ta, g.tb, g.M, g.N, g.K, 1.f, a_, g.ta ? g.M : g.K, b_, g.tb ? g.K : g.N, 1.f, c_, g.N);
    total += g.count * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return total;
}

double GemmLimit::flops() const {
  double f = 0;
  for (const GemmCall& g : calls_) f += 2.0 * g.M * g.N * g.K * g.count;
  return f;
}

}  // namespace mae::cli
