// Between the API's public picture type (mae::api::Pixels) and mae's own (mae::Image).
#pragma once
#include <string>

#include "data/image.h"
#include "mae/mae.h"

namespace mae::api_internal {

using api::Pixels;

// Throws mae::Error naming `what` unless p is a 1- or 3-channel picture whose data holds width·height·channels bytes
// and whose size is within mae's pixel limit.
void check_pixels(const Pixels& p, const std::string& what);
Pixels to_pixels(const Image& img);
// p checked (check_pixels, naming `what`) and copied into out, whose buffer is reused; returns out.
const Image& to_image(const Pixels& p, const std::string& what, Image& out);

}  // namespace mae::api_internal
