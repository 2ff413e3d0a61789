// MAE reconstructions as the official demo (demo/mae_visualize.ipynb, run_one_image) shows them: per image the
// original, the masked input, the reconstruction and the reconstruction with the visible patches pasted back.
#pragma once
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "model/inference_model.h"

namespace mae {

struct ReconstructPanels {
  Image original;  // the model's input picture, 8-bit (S, S, C)
  Image masked;    // original with removed patches set to the normalisation mean (0 after Normalize, as the demo)
  Image recon;     // the decoder's prediction for every patch (visible ones included, as the demo shows)
  Image paste;     // original where visible, prediction where removed: its visible patches equal `original`'s
  std::vector<uint8_t> mask;      // (L) 1 = removed, in patch order (row-major over the grid)
  std::vector<float> patch_loss;  // (L) mean squared error of each patch against the training target (per-patch
                                  // normalised pixels for norm_pix): the loss is its mean over removed patches
  double loss = 0;                // that mean: what the training loss would be for this image and mask
};

// crops: model-ready 8-bit pictures (S, S, C) with S = img_size, C = in_chans (the eval transform's apply_u8);
// norm: the model's input normalisation; noise (n, L) decides each mask (argsort, len_keep as in training);
// norm_pix: the model predicts per-patch normalised pixels (norm_pix_loss), so each predicted patch is mapped back
// with that patch's own mean and std from the original image: pred · sqrt(var + 1e-6) + mean, var unbiased (N−1),
// statistics taken in the normalised input space — exactly inverting the training target.
// Runs model.batch() images per forward (the last chunk padded). Pixels: clip(round((x·std + mean)·255), 0, 255).
std::vector<ReconstructPanels> reconstruct(InferenceModel& model, const std::vector<Image>& crops,
                                           const Normalization& norm, const std::vector<float>& noise, bool norm_pix);

// One row per image of four panels (original, masked, reconstruction, reconstruction + visible), each upscaled
// ×scale by nearest neighbour, `gap` white pixels between panels and rows (none outside):
// width 4·S·scale + 3·gap, height n·S·scale + (n−1)·gap.
Image make_grid(const std::vector<ReconstructPanels>& rows, int scale, int gap);

// Upscale that makes a panel about 224 px wide: 28 px → ×8, 64 → ×3, 224 and more → ×1.
inline int default_scale(int img_size) { return img_size >= 224 ? 1 : 224 / img_size; }

}  // namespace mae
