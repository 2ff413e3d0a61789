#include "data/mixup.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace mae {

void validate(const MixupConfig& c) {
  // Beta(α, α) parameters: NaN used to switch mixing off silently and ∞ to give a NaN loss.
  if (!(std::isfinite(c.mixup_alpha) && c.mixup_alpha >= 0))
    fail("--mixup must be a finite number ≥ 0, got ", c.mixup_alpha);
  if (!(std::isfinite(c.cutmix_alpha) && c.cutmix_alpha >= 0))
    fail("--cutmix must be a finite number ≥ 0, got ", c.cutmix_alpha);
  if (!(c.prob >= 0 && c.prob <= 1)) fail("--mixup_prob must be in [0, 1], got ", c.prob);
  if (!(c.switch_prob >= 0 && c.switch_prob <= 1)) fail("--mixup_switch_prob must be in [0, 1], got ", c.switch_prob);
  if (c.mode != "batch") fail("--mixup_mode '", c.mode, "': only 'batch' is supported");
  if (!(c.label_smoothing >= 0 && c.label_smoothing < 1))
    fail("--smoothing must be in [0, 1), got ", c.label_smoothing);
}

namespace {
double sample_gamma(Rng& rng, double a) {
  if (a < 1) {  // boost: Gamma(a) = Gamma(a + 1) · U^(1/a)
    const double u = 1.0 - rng.uniform();  // (0, 1]
    return sample_gamma(rng, a + 1) * std::pow(u, 1.0 / a);
  }
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = 1.0 - rng.uniform();
    if (u < 1 - 0.0331 * x * x * x * x || std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
  }
}
}  // namespace

double sample_beta(Rng& rng, double a, double b) {
  const double x = sample_gamma(rng, a), y = sample_gamma(rng, b);
  return x + y > 0 ? x / (x + y) : 0.5;
}

MixParams mixup_draw(const MixupConfig& c, Rng& rng, int H, int W) {
  MixParams p;
  if (!c.active()) return p;
  // if self.mixup_enabled and np.random.rand() < self.mix_prob:
  if (!(rng.uniform() < c.prob)) return p;
  double lam;
  if (c.mixup_alpha > 0 && c.cutmix_alpha > 0) {
    p.cutmix = rng.uniform() < c.switch_prob;
    lam = p.cutmix ? sample_beta(rng, c.cutmix_alpha, c.cutmix_alpha) : sample_beta(rng, c.mixup_alpha, c.mixup_alpha);
  } else if (c.mixup_alpha > 0) {
    lam = sample_beta(rng, c.mixup_alpha, c.mixup_alpha);
  } else {
    p.cutmix = true;
    lam = sample_beta(rng, c.cutmix_alpha, c.cutmix_alpha);
  }
  p.lam = lam;
  if (!p.cutmix) return p;
  // rand_bbox: cut = int(size · sqrt(1 − lam)), centre uniform over the image, box clipped to it
  const double ratio = std::sqrt(1 - lam);
  const int cut_h = int(H * ratio), cut_w = int(W * ratio);
  const int cy = int(rng.uniform_int(uint64_t(H))), cx = int(rng.uniform_int(uint64_t(W)));
  p.yl = std::clamp(cy - cut_h / 2, 0, H), p.yh = std::clamp(cy + cut_h / 2, 0, H);
  p.xl = std::clamp(cx - cut_w / 2, 0, W), p.xh = std::clamp(cx + cut_w / 2, 0, W);
  // correct_lam: lam = 1 − bbox_area / (H · W)
  if (c.correct_lam) p.lam = 1.0 - double((p.yh - p.yl) * (p.xh - p.xl)) / double(H * W);
  return p;
}

void mixup_apply(float* x, int B, int C, int H, int W, const MixParams& p) {
  if (p.lam == 1.0) return;  // _mix_batch: if lam == 1.: return 1.
  const size_t per = size_t(C) * H * W;
  if (p.cutmix) {  // x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]: pairs (b, B−1−b) swap the box
    for (int b = 0; b < B / 2; ++b) {
      float* u = x + size_t(b) * per;
      float* v = x + size_t(B - 1 - b) * per;
      for (int ch = 0; ch < C; ++ch)
        for (int y = p.yl; y < p.yh; ++y)
          for (int xx = p.xl; xx < p.xh; ++xx) {
            const size_t o = (size_t(ch) * H + y) * W + xx;
            std::swap(u[o], v[o]);
          }
    }
    return;
  }
  // x_flipped = x.flip(0).mul_(1. - lam); x.mul_(lam).add_(x_flipped)   (float arithmetic, as torch)
  const float lam = float(p.lam), rest = float(1.0 - p.lam);
  for (int b = 0; b <= (B - 1) / 2; ++b) {
    float* u = x + size_t(b) * per;
    float* v = x + size_t(B - 1 - b) * per;
    for (size_t i = 0; i < per; ++i) {
      const float a = u[i], c = v[i];
      u[i] = a * lam + c * rest;
      v[i] = c * lam + a * rest;  // for the middle of an odd batch u == v and both lines agree
    }
  }
}

void mixup_targets(float* t, const int32_t* y, int B, int NC, double lam, double smoothing) {
  // off_value = smoothing / num_classes; on_value = 1. - smoothing + off_value
  const double off = smoothing / NC, on = 1.0 - smoothing + off;
  const float l = float(lam), r = float(1.0 - lam);
  for (int b = 0; b < B; ++b) {
    const int y1 = y[b], y2 = y[B - 1 - b];
    for (int k = 0; k < NC; ++k) {
      const float o1 = float(k == y1 ? on : off), o2 = float(k == y2 ? on : off);
      t[size_t(b) * NC + k] = lam == 1.0 ? o1 : o1 * l + o2 * r;  // y1 * lam + y2 * (1. - lam)
    }
  }
}

}  // namespace mae
