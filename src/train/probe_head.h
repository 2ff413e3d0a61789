// The linear probe's head (main_linprobe.py): model.head = Sequential(BatchNorm1d(D, affine=False, eps=1e-6),
// Linear(D, C)), only the Linear trained (LARS); its evaluation on cached test features.
#pragma once
#include <cstdint>
#include <vector>

#include "train/engine.h"
#include "train/lars.h"

namespace mae {

struct ProbeHead {
  int D, C;
  std::vector<float> W, b, muW, mub, gW, gb;  // (C, D), (C): weights, LARS momentum, gradients
  std::vector<float> rmean, rvar;             // (D): BN running statistics
  int64_t batches_tracked = 0;
  // scratch for batches of up to Bmax
  std::vector<float> xn, mean, rstd, logits, probs, targets, dlogits, lars_scratch;

  ProbeHead(int D, int C, int Bmax);
  // trunc_normal_(model.head.weight, std=0.01) (timm: cut at ±2 absolute); bias 0 (timm's Linear init).
  void init(uint64_t seed);
  // One micro-batch in training mode: f (B, D) features, y (B) labels. grads += dloss · ∂loss/∂(W, b). Returns
  // the batch's mean cross-entropy.
  float train_forward_backward(const float* f, const int32_t* y, int B, float dloss);
  // Gradients averaged over ranks, one LARS step, gradients zeroed (optimizer.zero_grad()).
  void step(double lr, const LarsConfig& c);
  void zero_grad();
  void average_grads();
  // model.eval(): BN with running statistics. f (B, D) → out (B, C).
  void eval_logits(const float* f, int B, float* out);
  // Every rank gets rank 0's head (weights, momentum, BN statistics; gradients when `grads`).
  void broadcast(bool grads);
};

// engine_finetune.evaluate on features x (n, D) with labels: mean cross-entropy and top-1/top-5 (top-5 only with
// more than 5 classes, else NaN), in batches of `batch`.
EvalStats evaluate_probe(ProbeHead& h, const float* x, const int32_t* labels, int64_t n, int batch);

}  // namespace mae
