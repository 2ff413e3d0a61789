// timm Mixup / CutMix in batch mode (main_finetune.py: --mixup --cutmix --mixup_prob --mixup_switch_prob
// --mixup_mode batch --smoothing): one lam per batch from Beta(α, α); mixup blends each image with its partner
// in the flipped batch (x.flip(0)), cutmix pastes the partner's rand_bbox rectangle and corrects lam to the
// pasted area. Targets are one-hot with label smoothing (off = s/C, on = 1 − s + off), mixed with the same lam.
#pragma once
#include <cstdint>
#include <string>

#include "core/rng.h"

namespace mae {

struct MixupConfig {
  double mixup_alpha = 0, cutmix_alpha = 0;
  double prob = 1.0;         // --mixup_prob: chance a batch is mixed at all
  double switch_prob = 0.5;  // --mixup_switch_prob: cutmix instead of mixup when both are on
  std::string mode = "batch";
  double label_smoothing = 0.1;
  int num_classes = 1000;
  bool correct_lam = true;
  bool active() const { return mixup_alpha > 0 || cutmix_alpha > 0; }  // mixup_fn is None otherwise
};

void validate(const MixupConfig& c);  // throws naming the flag

struct MixParams {
  double lam = 1.0;       // weight of the image itself (1: the batch is left as it is)
  bool cutmix = false;
  int yl = 0, yh = 0, xl = 0, xh = 0;  // cutmix box rows [yl, yh), columns [xl, xh)
};

// Beta(a, b) from our Rng (Marsaglia–Tsang gammas).
double sample_beta(Rng& rng, double a, double b);

// _params_per_batch + cutmix_bbox_and_lam: draws (in order) the mix-prob coin, the switch coin (when both alphas are
// on), the Beta lam, then for cutmix the box centre (cy, cx).
MixParams mixup_draw(const MixupConfig& c, Rng& rng, int H, int W);

// _mix_batch on x (B, C, H, W) in place: mixup x = lam·x + (1−lam)·x.flip(0); cutmix swaps the box with the
// partner's.
void mixup_apply(float* x, int B, int C, int H, int W, const MixParams& p);

// mixup_target: targets (B, NC) = lam·one_hot(y) + (1−lam)·one_hot(y.flip(0)), smoothed. lam = 1 with no mixing
// gives the label-smoothed one-hot targets (LabelSmoothingCrossEntropy), smoothing 0 the plain one-hot.
void mixup_targets(float* targets, const int32_t* labels, int B, int NC, double lam, double smoothing);

}  // namespace mae
