// One tensor of a flat parameter buffer as an optimizer sees it: where it starts, how long it is, whether weight
// decay applies. The model layer's ParamList produces these; a backend with a fused AdamW over the whole buffer (the
// CUDA one) consumes them, so the op layer needs nothing from the model layer.
#pragma once
#include <cstddef>

namespace mae {

struct AdamWSegment {
  size_t offset, numel;
  bool decay;
};

}  // namespace mae
