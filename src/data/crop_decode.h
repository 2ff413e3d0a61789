// --decode fast: RandomResizedCrop that decodes only what its crop needs (the idea of DALI's fused crop-decode and of
// FFCV-style loaders), built on libjpeg-turbo's partial decoding (data/decode.h decode_jpeg_region).
//
// The crop box is drawn exactly as the exact path draws it, from the size in the JPEG header, so the fast path's box
// is the exact path's box (the same Rng draws; tests/test_crop_decode.cpp). Then:
//   denom = the largest of 1/2, 1/4, 1/8 at which the box still covers the output size (else 1);
//   denom 1: the box's rows and iMCU columns are decoded, nothing else, and resized as the exact path resizes its
//            crop: the result is bit-identical to the exact path;
//   denom d: the box is decoded at DCT scale 1/d with a margin for the filter taps and resized from the fractional
//            box (left/d, top/d, right/d, bottom/d) — what PIL gives for Image.draft() then resize(box=...). The
//            pixels differ a little from the exact path (PSNR in README "Data at scale").
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/decode.h"
#include "data/image.h"
#include "data/transforms.h"

namespace mae {

// The DCT scale denominator for a box resized to out_w × out_h: the largest d in {8, 4, 2} with box ≥ d × output
// on both sides, else 1.
int crop_dct_denom(const CropBox& box, int out_w, int out_h);

// The box of a JPEG (info from read_jpeg_info; not CMYK) resized to out_w × out_h. channels: the model's (1 or 3);
// an RGB picture for a grey model is converted before resampling, as the exact path does; a grey picture stays
// one channel (the transform repeats it). region, grey: scratch reused between calls. Throws mae::Error naming
// `name` for a corrupt file.
void crop_decode_resize(const uint8_t* data, size_t size, const std::string& name, const JpegInfo& info,
                        const CropBox& box, int channels, int out_w, int out_h, Image& out, Image& region,
                        Image& grey, ResampleScratch& rs);

}  // namespace mae
