// Fixed 2-D sin-cos position embeddings, exactly the official util/pos_embed.py get_2d_sincos_pos_embed.
#pragma once
#include <vector>

namespace mae {

// Returns ((cls ? 1 : 0) + gh·gw, D) row-major, computed in double like numpy and rounded to float like the
// official `torch.from_numpy(pos_embed).float()`. Row m = 1 + i·gw + j (i row, j column) holds
//   [ sincos_1d(D/2, j) | sincos_1d(D/2, i) ]   (the official meshgrid puts w first, so the column index fills the
// first half), sincos_1d(d, pos) = [sin(pos·ω_k) | cos(pos·ω_k)], ω_k = 1 / 10000^(k / (d/2)), k < d/2.
// The cls row is zero. D must be a multiple of 4.
std::vector<float> sincos_pos_embed_2d(int D, int gh, int gw, bool cls);

}  // namespace mae
