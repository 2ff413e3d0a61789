// The API's picture helpers: decoding and PNG encoding are data/decode.h's, the four panels eval/reconstruct.h's.
#include <algorithm>

#include "api/convert.h"
#include "api/errors.h"
#include "core/error.h"
#include "core/limits.h"
#include "data/decode.h"
#include "eval/reconstruct.h"
#include "mae/mae.h"

namespace mae::api_internal {

void check_pixels(const Pixels& p, const std::string& what) {
  if (p.channels != 1 && p.channels != 3) fail(what, ": ", p.channels, " channels (1 grey or 3 RGB)");
  if (p.width < 1 || p.height < 1) fail(what, ": no pixels (", p.width, "×", p.height, ")");
  const uint64_t px = uint64_t(p.width) * uint64_t(p.height);
  if (px > limits::kImagePixels) fail(what, ": ", px, " pixels is more than the limit of ", limits::kImagePixels);
  if (p.data.size() != px * uint64_t(p.channels))
    fail(what, ": ", p.data.size(), " bytes for ", p.width, "×", p.height, "×", p.channels, " pixels");
}

const Image& to_image(const Pixels& p, const std::string& what, Image& out) {
  check_pixels(p, what);
  out.resize(p.width, p.height, p.channels);
  std::copy(p.data.begin(), p.data.end(), out.px.begin());
  return out;
}

Pixels to_pixels(const Image& img) {
  Pixels p;
  p.width = img.w, p.height = img.h, p.channels = img.c;
  p.data = img.px;
  return p;
}

}  // namespace mae::api_internal

namespace mae::api {
namespace {

using api_internal::to_pixels;

Image to_image(const Pixels& p) {
  Image img;
  api_internal::to_image(p, "picture", img);
  return img;
}

}  // namespace

Pixels decode_image(const void* bytes, size_t size, uint64_t max_pixels, const std::string& name) {
  return api_internal::translate_errors([&] {
    Image img;
    decode_image_memory(static_cast<const uint8_t*>(bytes), size, name, img,
                        max_pixels == 0 ? limits::kImagePixels : max_pixels);
    return to_pixels(img);
  });
}

std::vector<uint8_t> encode_png(const Pixels& img) {
  return api_internal::translate_errors([&] {
    std::vector<uint8_t> out;
    encode_png_memory(to_image(img), out);
    return out;
  });
}

Pixels four_panels(const Reconstruction& r, int scale, int gap) {
  return api_internal::translate_errors([&] {
    if (scale < 0 || gap < 0) fail("four_panels: scale and gap must be ≥ 0, got ", scale, " and ", gap);
    std::vector<ReconstructPanels> row(1);
    row[0].original = to_image(r.original), row[0].masked = to_image(r.masked);
    row[0].recon = to_image(r.reconstruction), row[0].paste = to_image(r.paste);
    return to_pixels(make_grid(row, scale > 0 ? scale : default_scale(r.original.width), gap));
  });
}

}  // namespace mae::api
