#include "model/pos_embed.h"

#include <cmath>

#include "core/error.h"

namespace mae {

std::vector<float> sincos_pos_embed_2d(int D, int gh, int gw, bool cls) {
  MAE_CHECK(D % 4 == 0, "embed dim ", D, " must be a multiple of 4");
  const int half = D / 2, quarter = D / 4, c0 = cls ? 1 : 0;
  std::vector<float> out(size_t(c0 + gh * gw) * D, 0.0f);
  std::vector<double> omega(quarter);
  for (int k = 0; k < quarter; ++k) omega[k] = 1.0 / std::pow(10000.0, double(k) / (half / 2.0));
  for (int i = 0; i < gh; ++i)
    for (int j = 0; j < gw; ++j) {
      float* row = &out[size_t(c0 + i * gw + j) * D];
      // emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])   (grid[0] is the w coordinate)
      // emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])
      const double pos[2] = {double(j), double(i)};
      for (int h = 0; h < 2; ++h)
        for (int k = 0; k < quarter; ++k) {
          const double a = pos[h] * omega[k];
          row[h * half + k] = float(std::sin(a));
          row[h * half + quarter + k] = float(std::cos(a));
        }
    }
  return out;
}

}  // namespace mae
