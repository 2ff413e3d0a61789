#include "eval/reconstruct.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace mae {

namespace {

uint8_t to_u8(float x) { return uint8_t(std::clamp(std::lround(double(x) * 255.0), 0L, 255L)); }

}  // namespace

std::vector<ReconstructPanels> reconstruct(InferenceModel& model, const std::vector<Image>& crops,
                                           const Normalization& norm, const std::vector<float>& noise, bool norm_pix) {
  const ModelConfig& c = model.config();
  const int B = model.batch(), C = c.in_chans, S = c.img_size, p = c.patch_size, g = c.grid(), L = c.num_patches(),
            P = c.patch_dim();
  const size_t n = crops.size(), img_elems = size_t(C) * S * S;
  MAE_CHECK(noise.size() == n * L, noise.size(), n * L);
  MAE_CHECK(int(norm.mean.size()) == C && int(norm.std.size()) == C);
  for (const Image& im : crops) MAE_CHECK(im.w == S && im.h == S && im.c == C, im.w, im.h, im.c);

  std::vector<float> imgs(B * img_elems), nz(size_t(B) * L), x_patches(size_t(L) * P), y_patches(size_t(L) * P),
      y_img(img_elems);
  std::vector<ReconstructPanels> out(n);
  for (size_t first = 0; first < n; first += B) {
    const int nb = int(std::min<size_t>(B, n - first));
    std::fill(imgs.begin(), imgs.end(), 0.0f);
    for (int i = 0; i < B; i++) {  // padding rows reuse the first mask: they are computed and dropped
      const size_t src = first + (i < nb ? i : 0);
      std::copy_n(noise.data() + src * L, L, nz.data() + size_t(i) * L);
    }
    // ToTensor + Normalize, (S, S, C) bytes → (C, S, S) floats, the same float arithmetic as Transform's table
    for (int i = 0; i < nb; i++) {
      const Image& im = crops[first + i];
      for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < S; y++)
          for (int x = 0; x < S; x++) {
            volatile float v = float(im.at(y, x, ch)) / 255.0f;
            imgs[i * img_elems + (size_t(ch) * S + y) * S + x] = (v - norm.mean[ch]) / norm.std[ch];
          }
    }
    model.forward(imgs.data(), nz.data());

    for (int i = 0; i < nb; i++) {
      const float* pred = model.pred() + (size_t(i) * (1 + L) + 1) * P;  // (L, P), cls row dropped
      const float* mask = model.mask() + size_t(i) * L;                   // (L), 1 = removed
      std::copy_n(pred, size_t(L) * P, y_patches.data());
      ReconstructPanels& r = out[first + i];
      r.mask.resize(L);
      r.patch_loss.resize(L);
      // target = patchify(imgs), with norm_pix (x - mean) / (var + 1e-6) ** .5 per patch, so x ≈ pred · sqrt(var +
      // 1e-6) + mean; loss = (pred - target) ** 2 .mean(-1) per patch (forward_loss)
      cpu::patchify_ijc(x_patches.data(), imgs.data() + i * img_elems, 1, C, S, S, p);
      double removed_sum = 0;
      int removed = 0;
      for (int l = 0; l < L; l++) {
        const float* xp = x_patches.data() + size_t(l) * P;
        double mean = 0, sd = 1;
        if (norm_pix) {
          double var = 0;
          for (int k = 0; k < P; k++) mean += xp[k];
          mean /= P;
          for (int k = 0; k < P; k++) var += (xp[k] - mean) * (xp[k] - mean);
          var /= (P - 1);
          sd = std::sqrt(var + 1e-6);
        }
        const float* pp = pred + size_t(l) * P;
        double se = 0;
        for (int k = 0; k < P; k++) {
          const double d = pp[k] - (xp[k] - mean) / sd;
          se += d * d;
        }
        r.patch_loss[l] = float(se / P);
        r.mask[l] = mask[l] > 0.5f;
        if (r.mask[l]) removed_sum += r.patch_loss[l], removed++;
        if (norm_pix) {
          float* yp = y_patches.data() + size_t(l) * P;
          for (int k = 0; k < P; k++) yp[k] = float(yp[k] * sd + mean);
        }
      }
      r.loss = removed ? removed_sum / removed : 0.0;
      cpu::unpatchify_ijc(y_img.data(), y_patches.data(), 1, C, S, S, p);  // (C, S, S)

      const Image& orig = crops[first + i];
      r.original = orig;
      r.masked.resize(S, S, C);
      r.recon.resize(S, S, C);
      r.paste.resize(S, S, C);
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
          const bool removed = mask[(y / p) * g + x / p] > 0.5f;
          for (int ch = 0; ch < C; ch++) {
            const uint8_t rec = to_u8(y_img[(size_t(ch) * S + y) * S + x] * norm.std[ch] + norm.mean[ch]);
            const uint8_t o = orig.at(y, x, ch);
            r.recon.at(y, x, ch) = rec;
            r.masked.at(y, x, ch) = removed ? to_u8(norm.mean[ch]) : o;
            r.paste.at(y, x, ch) = removed ? rec : o;
          }
        }
    }
  }
  return out;
}

Image make_grid(const std::vector<ReconstructPanels>& rows, int scale, int gap) {
  MAE_CHECK(!rows.empty() && scale >= 1 && gap >= 0);
  // Sizes from flags: computed in 64 bits and bounded before anything is allocated (a PNG side is < 2^31, and a
  // picture people look at is far below kMaxGridSide).
  constexpr int64_t kMaxGridSide = 32768;
  const int64_t S = rows[0].original.w, n = int64_t(rows.size()), Ps = S * scale;
  const int64_t W = 4 * Ps + 3 * int64_t(gap), H = n * Ps + (n - 1) * int64_t(gap);
  if (W > kMaxGridSide || H > kMaxGridSide)
    fail("the reconstruction grid would be ", W, "×", H, " px, over the limit of ", kMaxGridSide,
         " px a side: lower --scale (", scale, "), --gap (", gap, ") or --num (", n, ")");
  const int C = rows[0].original.c;
  Image g;
  g.resize(int(W), int(H), C);
  std::fill(g.px.begin(), g.px.end(), uint8_t(255));
  for (int r = 0; r < n; r++) {
    const Image* panels[4] = {&rows[r].original, &rows[r].masked, &rows[r].recon, &rows[r].paste};
    for (int k = 0; k < 4; k++) {
      const Image& src = *panels[k];
      MAE_CHECK(src.w == S && src.h == S && src.c == C);
      const int x0 = k * int(Ps + gap), y0 = r * int(Ps + gap);
      for (int y = 0; y < Ps; y++)
        for (int x = 0; x < Ps; x++)
          for (int ch = 0; ch < C; ch++) g.at(y0 + y, x0 + x, ch) = src.at(y / scale, x / scale, ch);
    }
  }
  return g;
}

}  // namespace mae
