// libFuzzer target: PNG decoding from memory, as the loader decodes files (every colour type and bit depth, the
// pixel limit checked from the header before anything is allocated).
#include "../fuzz_common.h"
#include "core/error.h"
#include "data/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  try {
    Image img;
    decode_image_memory(data, size, "fuzz.png", img);
    FUZZ_CHECK(img.c == 1 || img.c == 3);
    FUZZ_CHECK(img.px.size() == size_t(img.c) * img.h * img.w);
  } catch (const Error&) {
  }
  return 0;
}
