// An 8-bit image in memory: rows top to bottom, pixels interleaved (HWC), c = 1 (grey) or 3 (RGB) when it comes
// from a decoder or dataset; 2 and 4 (with alpha) are accepted by encode_png.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mae {

struct Image {
  int w = 0, h = 0, c = 0;
  std::vector<uint8_t> px;  // (h, w, c)

  size_t size() const { return size_t(w) * h * c; }
  void resize(int w_, int h_, int c_) {
    w = w_, h = h_, c = c_;
    px.resize(size());  // keeps capacity: reusing an Image avoids reallocating in steady state
  }
  uint8_t& at(int y, int x, int ch) { return px[(size_t(y) * w + x) * c + ch]; }
  uint8_t at(int y, int x, int ch) const { return px[(size_t(y) * w + x) * c + ch]; }
};

}  // namespace mae
