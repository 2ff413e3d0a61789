// timm RandomErasing (Zhong et al.) as main_finetune.py applies it: after Normalize, on one (C, H, W) tensor, with
// probability `prob` erase `count` rectangles of area U(0.02, 1/3)·H·W/count and aspect exp(U(log 0.3, log 1/0.3)),
// 10 tries each for one that fits, filled per mode: "pixel" N(0, 1) per element, "rand" N(0, 1) per channel,
// "const" zeros. Random draws come from our Rng, in the order timm makes them.
#pragma once
#include <string>

#include "core/rng.h"

namespace mae {

struct RandomErasingConfig {
  double prob = 0.25;  // --reprob
  std::string mode = "pixel";  // --remode: pixel | rand | const
  int min_count = 1, max_count = 1;  // --recount (max)
  double min_area = 0.02, max_area = 1.0 / 3.0;
  double min_aspect = 0.3, max_aspect = 1.0 / 0.3;
};

struct EraseBox {
  int top = 0, left = 0, h = 0, w = 0;
};

// Erases in place; returns the number of rectangles written (0 when the coin said no or nothing fitted). `boxes`,
// if given, receives them (room for max_count).
int random_erase(float* img, int C, int H, int W, const RandomErasingConfig& cfg, Rng& rng, EraseBox* boxes = nullptr);

void validate(const RandomErasingConfig& cfg);  // throws naming --reprob / --remode / --recount

}  // namespace mae
