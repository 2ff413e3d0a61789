// JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit grey or RGB, and PNG writing.
//
// What comes out matches what PIL gives after Image.open(f).convert(mode) for the file's natural mode, which is what
// the official code feeds its transforms: grey stays 1 channel, everything else becomes 3 (RGB). Alpha is dropped,
// not composited (PIL's convert('RGB') drops it too); palettes are expanded; 16-bit samples keep their high byte
// (PIL does so for 16-bit RGB; for 16-bit grey PIL's I;16 → L conversion clips at 255, which we do not copy);
// CMYK/YCCK JPEGs (a few exist in ImageNet) are converted with PIL's formula, Adobe inversion included.
// The format is chosen by the magic bytes, never the extension (ImageNet has a PNG named .JPEG).
// Every failure (unreadable, not JPEG/PNG, corrupt, truncated) throws mae::Error naming the file. libjpeg's mere
// warnings about corrupt entropy data are tolerated, as PIL tolerates them, except running out of data: a file cut
// short ("premature end of file"), and image data that ends (EOI) before the rows its header announces — a header
// that lies about the size, which PIL would pad with grey.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/limits.h"
#include "data/image.h"

namespace mae {

Image decode_image(const std::string& path);
// Same, reusing out's buffer (the loader's workers call this in steady state).
void decode_image(const std::string& path, Image& out);
// From memory; `name` is used in error messages. max_pixels lowers the pixel limit (checked from the header, before
// any pixel buffer exists) below limits::kImagePixels, e.g. for images sent to a server.
void decode_image_memory(const uint8_t* data, size_t size, const std::string& name, Image& out,
                         uint64_t max_pixels = limits::kImagePixels);

// The bytes of an image file into buf (resized to the file's size): a regular file of at most
// limits::kImageFileBytes (a FIFO would block forever, a link to /dev/zero never end). Throws naming the file.
void read_image_file(const std::string& path, std::vector<uint8_t>& buf);

// ------------------------------------------------------------------------------------ crop-aware JPEG decoding

// What a JPEG's header says, without decoding pixels: the picture's size, 1 (grey) or 3 channels as decode_image
// would output them, and whether it is CMYK/YCCK (converted to RGB by decode_image only).
struct JpegInfo {
  int width = 0, height = 0, channels = 0;
  bool cmyk = false;
};
// false when data is not a JPEG (by its magic bytes); throws mae::Error naming `name` for a corrupt header or one
// over the pixel limit.
bool read_jpeg_info(const uint8_t* data, size_t size, const std::string& name, JpegInfo& info);

// Decodes part of a (non-CMYK) JPEG at the DCT scale 1/denom (denom 1, 2, 4 or 8), whose picture is
// ceil(W/denom) × ceil(H/denom): rows [y0, y1) and at least columns [x0, x1) of it. libjpeg-turbo decodes only the
// iMCU columns the region touches (jpeg_crop_scanline) and skips the IDCT and colour conversion of the rows above
// and below it (jpeg_skip_scanlines), so out has rows y0..y1-1 and columns [out_x0, out_x0 + out.w) ⊇ [x0, x1).
// The entropy data below the region is still read, so a file whose data ends early fails here as in
// decode_image_memory, whatever the region. At denom 1 the pixels equal decode_image's.
void decode_jpeg_region(const uint8_t* data, size_t size, const std::string& name, int denom, int x0, int y0, int x1,
                        int y1, Image& out, int& out_x0);

// Writes an 8-bit PNG (c = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) atomically: a temporary file in the same directory,
// then rename, so readers never see a partial picture and a failure leaves no file behind.
void encode_png(const std::string& path, const Image& img);
// The same PNG into memory (an HTTP response).
void encode_png_memory(const Image& img, std::vector<uint8_t>& out);

}  // namespace mae
