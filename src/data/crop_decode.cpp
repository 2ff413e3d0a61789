#include "data/crop_decode.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mae {

int crop_dct_denom(const CropBox& box, int out_w, int out_h) {
  for (int d = 8; d > 1; d /= 2)
    if (box.width >= int64_t(d) * out_w && box.height >= int64_t(d) * out_h) return d;
  return 1;
}

void crop_decode_resize(const uint8_t* data, size_t size, const std::string& name, const JpegInfo& info,
                        const CropBox& box, int channels, int out_w, int out_h, Image& out, Image& region,
                        Image& grey, ResampleScratch& rs) {
  MAE_CHECK(box.top >= 0 && box.left >= 0 && box.width > 0 && box.height > 0 && box.left + box.width <= info.width &&
                box.top + box.height <= info.height,
            "crop box outside the picture");
  const int d = crop_dct_denom(box, out_w, out_h);
  // The region of the scaled picture to decode: the box itself at d = 1 (the exact path's taps stop at the crop's
  // edges); at d > 1 the box (fractional at that scale) plus the filter's support on every side.
  const double fx0 = double(box.left) / d, fy0 = double(box.top) / d;
  const double fx1 = double(box.left + box.width) / d, fy1 = double(box.top + box.height) / d;
  int rx0 = box.left, ry0 = box.top, rx1 = box.left + box.width, ry1 = box.top + box.height;
  if (d > 1) {
    const int ws = (info.width + d - 1) / d, hs = (info.height + d - 1) / d;  // libjpeg's scaled size
    const int mx = int(std::ceil(2.0 * std::max(1.0, (fx1 - fx0) / out_w))) + 1;
    const int my = int(std::ceil(2.0 * std::max(1.0, (fy1 - fy0) / out_h))) + 1;
    rx0 = std::max(0, int(std::floor(fx0)) - mx), rx1 = std::min(ws, int(std::ceil(fx1)) + mx);
    ry0 = std::max(0, int(std::floor(fy0)) - my), ry1 = std::min(hs, int(std::ceil(fy1)) + my);
  }
  int region_x0 = 0;  // the decoded columns start here (widened to an iMCU boundary)
  decode_jpeg_region(data, size, name, d, rx0, ry0, rx1, ry1, region, region_x0);
  const Image* src = &region;
  if (region.c == 3 && channels == 1) {  // luma before resampling, as the exact path's convert('L')
    convert_channels(region, 1, grey);
    src = &grey;
  }
  if (d == 1)
    resize_bicubic(*src, {0, box.left - region_x0, box.height, box.width}, out_w, out_h, out, rs);
  else
    resize_bicubic_box(*src, fx0 - region_x0, fy0 - ry0, fx1 - region_x0, fy1 - ry0, out_w, out_h, out, rs);
}

}  // namespace mae
