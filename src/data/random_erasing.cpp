#include "data/random_erasing.h"

#include <cmath>

#include "core/error.h"

namespace mae {

void validate(const RandomErasingConfig& c) {
  if (!(c.prob >= 0 && c.prob <= 1)) fail("--reprob must be in [0, 1], got ", c.prob);
  if (c.mode != "pixel" && c.mode != "rand" && c.mode != "const")
    fail("--remode '", c.mode, "': expected pixel, rand or const");
  // Each image draws up to max_count boxes of area/count (timm; 1 in every recipe): an upper bound keeps a typo
  // from turning the loader into a loop of 2^31 boxes per image.
  constexpr int kMaxCount = 256;
  if (c.min_count < 1 || c.max_count < c.min_count || c.max_count > kMaxCount)
    fail("--recount must be in [1, ", kMaxCount, "], got ", c.max_count);
}

int random_erase(float* img, int C, int H, int W, const RandomErasingConfig& c, Rng& rng, EraseBox* boxes) {
  // if random.random() > self.probability: return
  if (rng.uniform() > c.prob) return 0;
  const double area = double(H) * W;
  // count = min_count if min_count == max_count else random.randint(min_count, max_count)
  const int count = c.min_count == c.max_count
                        ? c.min_count
                        : c.min_count + int(rng.uniform_int(uint64_t(c.max_count - c.min_count + 1)));
  const double la = std::log(c.min_aspect), lb = std::log(c.max_aspect);
  int written = 0;
  for (int k = 0; k < count; ++k) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = rng.uniform(c.min_area, c.max_area) * area / count;
      const double aspect = std::exp(rng.uniform(la, lb));
      // int(round(.)): Python rounds half to even, as nearbyint in the default rounding mode
      const int h = int(std::nearbyint(std::sqrt(target * aspect)));
      const int w = int(std::nearbyint(std::sqrt(target / aspect)));
      if (!(w < W && h < H)) continue;
      const int top = int(rng.uniform_int(uint64_t(H - h + 1)));   // random.randint(0, img_h - h)
      const int left = int(rng.uniform_int(uint64_t(W - w + 1)));  // random.randint(0, img_w - w)
      // _get_pixels: (chan, h, w) normals (pixel), (chan, 1, 1) normals (rand), zeros (const)
      for (int ch = 0; ch < C; ++ch) {
        const float per_channel = c.mode == "rand" ? float(rng.normal()) : 0.0f;
        for (int y = top; y < top + h; ++y)
          for (int x = left; x < left + w; ++x)
            img[(size_t(ch) * H + y) * W + x] = c.mode == "pixel" ? float(rng.normal()) : per_channel;
      }
      if (boxes) boxes[written] = {top, left, h, w};
      ++written;
      break;
    }
  }
  return written;
}

}  // namespace mae
