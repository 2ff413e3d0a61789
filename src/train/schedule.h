// Learning-rate schedule of the official util/lr_sched.py: linear warmup, then half-cycle cosine to min_lr.
// `epoch` is fractional (data_iter_step / len(data_loader) + epoch), evaluated every optimizer step.
#pragma once
#include <cmath>

namespace mae {

inline double lr_at(double epoch, double lr, double min_lr, double warmup_epochs, double epochs) {
  if (epoch < warmup_epochs) return lr * epoch / warmup_epochs;
  const double span = epochs - warmup_epochs;
  if (span <= 0) return lr;
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * (epoch - warmup_epochs) / span));
}

}  // namespace mae
