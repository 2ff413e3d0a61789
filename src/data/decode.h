// JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit grey or RGB, and PNG writing.
//
// What comes out matches what PIL gives after Image.open(f).convert(mode) for the file's natural mode, which is what
// the official code feeds its transforms: grey stays 1 channel, everything else becomes 3 (RGB). Alpha is dropped,
// not composited (PIL's convert('RGB') drops it too); palettes are expanded; 16-bit samples keep their high byte
// (PIL does so for 16-bit RGB; for 16-bit grey PIL's I;16 → L conversion clips at 255, which we do not copy);
// CMYK/YCCK JPEGs (a few exist in ImageNet) are converted with PIL's formula, Adobe inversion included.
// The format is chosen by the magic bytes, never the extension (ImageNet has a PNG named .JPEG).
// Every failure (unreadable, not JPEG/PNG, corrupt, truncated) throws mae::Error naming the file. libjpeg's mere
// warnings about corrupt entropy data are tolerated, as PIL tolerates them, except "premature end of file".
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image.h"

namespace mae {

Image decode_image(const std::string& path);
// Same, reusing out's buffer (the loader's workers call this in steady state).
void decode_image(const std::string& path, Image& out);
// From memory; `name` is used in error messages.
void decode_image_memory(const uint8_t* data, size_t size, const std::string& name, Image& out);

// Writes an 8-bit PNG (c = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) atomically: a temporary file in the same directory,
// then rename, so readers never see a partial picture and a failure leaves no file behind.
void encode_png(const std::string& path, const Image& img);

}  // namespace mae
