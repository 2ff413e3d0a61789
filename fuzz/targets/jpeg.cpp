// libFuzzer target: JPEG decoding from memory (whole, as the loader does) and by region at a DCT scale (as
// --decode fast reads it), after read_jpeg_info.
#include "../fuzz_common.h"
#include "core/error.h"
#include "data/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  try {
    Image img;
    decode_image_memory(data, size, "fuzz.jpg", img);
    FUZZ_CHECK(img.px.size() == size_t(img.c) * img.h * img.w);
  } catch (const Error&) {
  }
  try {
    JpegInfo info;
    if (read_jpeg_info(data, size, "fuzz.jpg", info) && !info.cmyk) {
      const int d = 1 << (size % 4), w = (info.width + d - 1) / d, h = (info.height + d - 1) / d;
      Image region;
      int x0 = 0;
      decode_jpeg_region(data, size, "fuzz.jpg", d, w / 3, h / 4, w / 3 + (w + 1) / 2, h / 4 + (h + 1) / 2, region,
                         x0);
    }
  } catch (const Error&) {
  }
  return 0;
}
