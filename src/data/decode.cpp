// libjpeg and libpng report errors through callbacks that must not return; both are used with setjmp/longjmp.
// Rule kept here: the functions that call setjmp hold no C++ objects with destructors (only C structs and pointers to
// objects owned by their callers), so a longjmp never skips a destructor; the C++ wrappers turn a false return
// into mae::Error. Throwing from the callbacks instead would unwind through C frames built without unwind tables.
#include "data/decode.h"

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "core/error.h"
#include "core/limits.h"
#include "data/replace_file.h"

namespace mae {

namespace {

constexpr size_t kMsgLen = 256;

// ---------------------------------------------------------------------------------------------------------- JPEG

struct JpegErr {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  jmp_buf jump;
  char msg[kMsgLen];
  bool too_large;  // msg is the pixel limit's, not corruption
  uint64_t max_pixels = limits::kImagePixels;
};

// The pixel budget (core/limits.h, or a caller's smaller one), checked from the header before any pixel buffer
// exists.
bool over_pixel_limit(uint64_t w, uint64_t h, uint64_t max_pixels, char* msg) {
  if (w * h <= max_pixels) return false;  // each ≤ 2^32: the product fits 64 bits
  std::snprintf(msg, kMsgLen, "%llu×%llu pixels is more than the limit of %llu%s", (unsigned long long)w,
                (unsigned long long)h, (unsigned long long)max_pixels,
                max_pixels == limits::kImagePixels ? " (PIL's DecompressionBombError)" : "");
  return true;
}

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  std::snprintf(e->msg, kMsgLen, "%s", buf);
  std::longjmp(e->jump, 1);
}

// Warnings (level -1) about corrupt entropy data are tolerated like PIL does, but running out of data is not:
// libjpeg would pad a truncated file with grey and call it a success.
// Image data that ends at the EOI marker before the rows the header announces is the same failure seen from the
// other side: a header that lies about the size (libjpeg, and PIL, would pad it with grey).
void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
    std::snprintf(e->msg, kMsgLen, "premature end of JPEG data (truncated file)");
    std::longjmp(e->jump, 1);
  }
  if (level == -1 && cinfo->err->msg_code == JWRN_HIT_MARKER &&
      reinterpret_cast<j_decompress_ptr>(cinfo)->unread_marker == 0xD9) {
    auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
    auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
    std::snprintf(e->msg, kMsgLen, "the image data ends before the %u×%u pixels its header announces (near row %u)",
                  d->image_width, d->image_height, d->output_scanline);
    std::longjmp(e->jump, 1);
  }
  if (level == -1) cinfo->err->num_warnings++;
}

inline uint8_t muldiv255(int a, int b) {  // PIL's MULDIV255: round(a·b / 255) for 8-bit a, b
  int t = a * b + 128;
  return uint8_t(((t >> 8) + t) >> 8);
}

// PIL's cmyk2rgb; Adobe files store CMYK inverted (PIL's rawmode "CMYK;I").
void cmyk_row_to_rgb(const uint8_t* in, uint8_t* out, int w, bool adobe) {
  for (int x = 0; x < w; x++, in += 4, out += 3) {
    int k = adobe ? 255 - in[3] : in[3];
    int nk = 255 - k;
    for (int ch = 0; ch < 3; ch++) {
      int c = adobe ? 255 - in[ch] : in[ch];
      int v = nk - muldiv255(c, nk);
      out[ch] = uint8_t(v < 0 ? 0 : v);
    }
  }
}

void jpeg_init_err(jpeg_decompress_struct* cinfo, JpegErr* err) {
  std::memset(cinfo, 0, sizeof *cinfo);  // so jpeg_destroy is safe whenever the jump comes
  cinfo->err = jpeg_std_error(&err->pub);
  err->pub.error_exit = jpeg_error_exit;
  err->pub.emit_message = jpeg_emit_message;
}

// Creates the decompressor on data and reads the header; false (err->msg set) when the picture is over the pixel
// budget. Called after the caller's setjmp: it holds nothing with a destructor, so a longjmp through it is safe.
bool jpeg_open(jpeg_decompress_struct* cinfo, JpegErr* err, const uint8_t* data, size_t size) {
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, (unsigned long)size);
  jpeg_read_header(cinfo, TRUE);
  if (over_pixel_limit(cinfo->image_width, cinfo->image_height, err->max_pixels, err->msg)) {
    err->too_large = true;
    return false;
  }
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  cinfo->out_color_space = cinfo->num_components == 1 ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
  return true;
}

bool jpeg_fail(jpeg_decompress_struct* cinfo) {
  jpeg_destroy_decompress(cinfo);
  return false;
}

bool jpeg_decode(const uint8_t* data, size_t size, Image* out, JpegErr* err) {
  jpeg_decompress_struct cinfo;
  jpeg_init_err(&cinfo, err);
  if (setjmp(err->jump)) return jpeg_fail(&cinfo);  // setjmp only as a whole condition: C allows no other use
  if (!jpeg_open(&cinfo, err, data, size)) return jpeg_fail(&cinfo);
  const bool cmyk = cinfo.out_color_space == JCS_CMYK;
  bool adobe = cinfo.saw_Adobe_marker;
  jpeg_start_decompress(&cinfo);
  int w = int(cinfo.output_width), h = int(cinfo.output_height);
  int c = cinfo.out_color_space == JCS_GRAYSCALE ? 1 : 3;
  out->resize(w, h, c);
  // CMYK rows go through a libjpeg-owned scratch row (freed by jpeg_destroy, so nothing leaks on a jump).
  JSAMPARRAY scratch = cmyk ? (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, JDIMENSION(w) * 4, 1)
                            : nullptr;
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t* dst = out->px.data() + size_t(cinfo.output_scanline) * w * c;
    if (cmyk) {
      jpeg_read_scanlines(&cinfo, scratch, 1);
      cmyk_row_to_rgb(scratch[0], dst, w, adobe);
    } else {
      JSAMPROW row = dst;
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

bool jpeg_info(const uint8_t* data, size_t size, JpegInfo* info, JpegErr* err) {
  jpeg_decompress_struct cinfo;
  jpeg_init_err(&cinfo, err);
  if (setjmp(err->jump)) return jpeg_fail(&cinfo);  // setjmp only as a whole condition: C allows no other use
  if (!jpeg_open(&cinfo, err, data, size)) return jpeg_fail(&cinfo);
  info->width = int(cinfo.image_width), info->height = int(cinfo.image_height);
  info->channels = cinfo.out_color_space == JCS_GRAYSCALE ? 1 : 3;
  info->cmyk = cinfo.out_color_space == JCS_CMYK;
  jpeg_destroy_decompress(&cinfo);
  return true;
}

// Region [x0, x1) × [y0, y1) of the picture at scale 1/denom; see decode_jpeg_region.
struct Region {
  int denom, x0, y0, x1, y1;
  int out_x0;
};

bool jpeg_decode_region(const uint8_t* data, size_t size, Region* r, Image* out, JpegErr* err) {
  jpeg_decompress_struct cinfo;
  jpeg_init_err(&cinfo, err);
  if (setjmp(err->jump)) return jpeg_fail(&cinfo);  // setjmp only as a whole condition: C allows no other use
  if (!jpeg_open(&cinfo, err, data, size)) return jpeg_fail(&cinfo);
  if (cinfo.out_color_space == JCS_CMYK) {
    std::snprintf(err->msg, kMsgLen, "CMYK JPEGs are decoded whole (decode_image), not by region");
    return jpeg_fail(&cinfo);
  }
  cinfo.scale_num = 1;
  cinfo.scale_denom = unsigned(r->denom);
  jpeg_start_decompress(&cinfo);
  const int W = int(cinfo.output_width), H = int(cinfo.output_height);
  if (r->x0 < 0 || r->y0 < 0 || r->x1 > W || r->y1 > H || r->x0 >= r->x1 || r->y0 >= r->y1) {
    std::snprintf(err->msg, kMsgLen, "region [%d, %d) x [%d, %d) outside the %dx%d picture at scale 1/%d", r->x0,
                  r->x1, r->y0, r->y1, W, H, r->denom);
    return jpeg_fail(&cinfo);
  }
  // Fancy chroma upsampling treats the crop's edges as the picture's edges: decode a margin beyond the region (and
  // the crop widens it further to iMCU boundaries) so the region's own pixels are the full decode's.
  const int margin = 8;
  const int cx0 = std::max(0, r->x0 - margin), cx1 = std::min(W, r->x1 + margin);
  JDIMENSION xoff = JDIMENSION(cx0), width = JDIMENSION(cx1 - cx0);
  jpeg_crop_scanline(&cinfo, &xoff, &width);
  const int c = cinfo.out_color_space == JCS_GRAYSCALE ? 1 : 3;
  out->resize(int(width), r->y1 - r->y0, c);
  if (r->y0 > 0) jpeg_skip_scanlines(&cinfo, JDIMENSION(r->y0));
  while (int(cinfo.output_scanline) < r->y1) {
    JSAMPROW row = out->px.data() + size_t(int(cinfo.output_scanline) - r->y0) * width * c;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  // The rest is entropy-decoded without IDCT: a file whose data ends early is refused whatever the region.
  if (cinfo.output_scanline < cinfo.output_height)
    jpeg_skip_scanlines(&cinfo, cinfo.output_height - cinfo.output_scanline);
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  r->out_x0 = int(xoff);
  return true;
}

// ----------------------------------------------------------------------------------------------------------- PNG

struct PngCtx {
  const uint8_t* data;
  size_t size, pos;
  char msg[kMsgLen];
  bool too_large;  // msg is the pixel limit's, not corruption
  uint64_t max_pixels;
};

void png_error_fn(png_structp png, png_const_charp m) {
  auto* ctx = static_cast<PngCtx*>(png_get_error_ptr(png));
  std::snprintf(ctx->msg, kMsgLen, "%s", m);
  png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}  // e.g. "iCCP: known incorrect sRGB profile": harmless

void png_read_fn(png_structp png, png_bytep dst, size_t n) {
  auto* ctx = static_cast<PngCtx*>(png_get_io_ptr(png));
  if (n > ctx->size - ctx->pos) png_error(png, "unexpected end of data (truncated file)");
  std::memcpy(dst, ctx->data + ctx->pos, n);
  ctx->pos += n;
}

bool png_decode(PngCtx* ctx, Image* out) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_error_fn, png_warning_fn);
  if (!png) {
    std::snprintf(ctx->msg, kMsgLen, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    if (!info) std::snprintf(ctx->msg, kMsgLen, "out of memory");
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    return false;
  }
  png_set_read_fn(png, ctx, png_read_fn);
  png_read_info(png, info);
  if (over_pixel_limit(png_get_image_width(png, info), png_get_image_height(png, info), ctx->max_pixels, ctx->msg)) {
    ctx->too_large = true;
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  int color = png_get_color_type(png, info);
  int depth = png_get_bit_depth(png, info);
  // 16-bit grey is PIL's mode "I;16", whose conversion to L/RGB clips at 255; other 16-bit PNGs keep the high
  // byte, as PIL's rawmodes RGB;16B / RGBA;16B / LA;16B do.
  const bool grey16 = depth == 16 && color == PNG_COLOR_TYPE_GRAY;
  if (depth == 16 && !grey16) png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);  // may add alpha from tRNS: dropped below
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int w = int(png_get_image_width(png, info)), h = int(png_get_image_height(png, info));
  const int nc = png_get_channels(png, info), bytes = grey16 ? 2 : nc;  // bytes per pixel as read
  if (png_get_rowbytes(png, info) != size_t(w) * bytes) png_error(png, "unexpected row size after transformations");
  out->resize(w, h, bytes);
  for (int p = 0; p < passes; p++)  // interlaced images fill the rows over several passes
    for (int y = 0; y < h; y++) png_read_row(png, out->px.data() + size_t(y) * w * bytes, nullptr);
  png_read_end(png, nullptr);  // a file cut anywhere, even after the pixels, is reported
  png_destroy_read_struct(&png, &info, nullptr);
  if (grey16) {  // big-endian 16-bit samples, clipped to 255 in place (the write index never passes the read)
    uint8_t* q = out->px.data();
    const size_t n = size_t(w) * h;
    for (size_t i = 0; i < n; i++) {
      const unsigned v = unsigned(q[2 * i]) << 8 | q[2 * i + 1];
      q[i] = uint8_t(v > 255 ? 255 : v);
    }
    out->resize(w, h, 1);
  }
  if (nc == 2 || nc == 4) {  // drop alpha in place: the write index never passes the read index
    int c = nc - 1;
    uint8_t* p = out->px.data();
    size_t n = size_t(w) * h;
    for (size_t i = 0; i < n; i++)
      for (int ch = 0; ch < c; ch++) p[i * c + ch] = p[i * nc + ch];
    out->resize(w, h, c);
  }
  return true;
}

struct PngWriteCtx {
  char msg[kMsgLen];
};

void png_write_error_fn(png_structp png, png_const_charp m) {
  auto* ctx = static_cast<PngWriteCtx*>(png_get_error_ptr(png));
  std::snprintf(ctx->msg, kMsgLen, "%s", m);
  png_longjmp(png, 1);
}

bool png_encode(FILE* f, const Image* img, PngWriteCtx* ctx) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_write_error_fn, png_warning_fn);
  if (!png) {
    std::snprintf(ctx->msg, kMsgLen, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    if (!info) std::snprintf(ctx->msg, kMsgLen, "out of memory");
    png_destroy_write_struct(&png, info ? &info : nullptr);
    return false;
  }
  static const int kColor[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                PNG_COLOR_TYPE_RGB_ALPHA};
  png_init_io(png, f);
  png_set_IHDR(png, info, png_uint_32(img->w), png_uint_32(img->h), 8, kColor[img->c], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < img->h; y++)
    png_write_row(png, const_cast<png_bytep>(img->px.data() + size_t(y) * img->w * img->c));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

bool is_jpeg(const uint8_t* d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }
bool is_png(const uint8_t* d, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  return n >= 8 && std::memcmp(d, sig, 8) == 0;
}

}  // namespace

void decode_image_memory(const uint8_t* data, size_t size, const std::string& name, Image& out,
                         uint64_t max_pixels) {
  max_pixels = std::min(max_pixels, limits::kImagePixels);
  if (is_jpeg(data, size)) {
    JpegErr err;
    err.msg[0] = 0, err.too_large = false, err.max_pixels = max_pixels;
    if (!jpeg_decode(data, size, &out, &err))
      fail("image ", name, err.too_large ? ": " : ": corrupt JPEG: ", err.msg);
  } else if (is_png(data, size)) {
    PngCtx ctx{data, size, 0, {}, false, max_pixels};
    if (!png_decode(&ctx, &out)) fail("image ", name, ctx.too_large ? ": " : ": corrupt PNG: ", ctx.msg);
  } else {
    fail("image ", name, ": not a JPEG or PNG file (", size == 0 ? "empty" : "unknown magic bytes", ")");
  }
  if (out.w <= 0 || out.h <= 0) fail("image ", name, ": has no pixels");
}

void read_image_file(const std::string& path, std::vector<uint8_t>& buf) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("image ", path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) > limits::kImageFileBytes) {
    const bool regular = S_ISREG(st.st_mode);
    std::fclose(f);
    if (!regular) fail("image ", path, ": not a regular file (a pipe, device or socket)");
    fail("image ", path, ": ", uint64_t(st.st_size), " bytes is more than the limit of ", limits::kImageFileBytes,
         " for one image file");
  }
  buf.resize(size_t(st.st_size) + 1);  // +1: a file that grew since the stat is seen, and refused
  const size_t n = std::fread(buf.data(), 1, buf.size(), f);
  bool bad = std::ferror(f) || n > size_t(st.st_size);
  std::fclose(f);
  if (bad) fail("image ", path, ": read error (or the file changed while it was read)");
  buf.resize(n);
}

void decode_image(const std::string& path, Image& out) {
  // The file buffer is per thread and reused: loader workers decode in a loop.
  thread_local std::vector<uint8_t> buf;
  read_image_file(path, buf);
  decode_image_memory(buf.data(), buf.size(), path, out);
}

bool read_jpeg_info(const uint8_t* data, size_t size, const std::string& name, JpegInfo& info) {
  if (!is_jpeg(data, size)) return false;
  JpegErr err;
  err.msg[0] = 0, err.too_large = false;
  if (!jpeg_info(data, size, &info, &err)) fail("image ", name, err.too_large ? ": " : ": corrupt JPEG: ", err.msg);
  return true;
}

void decode_jpeg_region(const uint8_t* data, size_t size, const std::string& name, int denom, int x0, int y0, int x1,
                        int y1, Image& out, int& out_x0) {
  MAE_CHECK(denom == 1 || denom == 2 || denom == 4 || denom == 8, "DCT scale 1/", denom);
  if (!is_jpeg(data, size)) fail("image ", name, ": not a JPEG file");
  JpegErr err;
  err.msg[0] = 0, err.too_large = false;
  Region r{denom, x0, y0, x1, y1, 0};
  if (!jpeg_decode_region(data, size, &r, &out, &err))
    fail("image ", name, err.too_large ? ": " : ": corrupt JPEG: ", err.msg);
  out_x0 = r.out_x0;
}

Image decode_image(const std::string& path) {
  Image img;
  decode_image(path, img);
  return img;
}

void encode_png(const std::string& path, const Image& img) {
  if (img.c < 1 || img.c > 4 || img.w <= 0 || img.h <= 0 || img.px.size() != img.size())
    fail("encode_png ", path, ": bad image ", img.w, "x", img.h, "x", img.c, " with ", img.px.size(), " bytes");
  replace_file(path, [&](FILE* f) {
    PngWriteCtx ctx;
    ctx.msg[0] = 0;
    if (!png_encode(f, &img, &ctx)) fail(ctx.msg);
  });
}

void encode_png_memory(const Image& img, std::vector<uint8_t>& out) {
  if (img.c < 1 || img.c > 4 || img.w <= 0 || img.h <= 0 || img.px.size() != img.size())
    fail("encode_png: bad image ", img.w, "x", img.h, "x", img.c, " with ", img.px.size(), " bytes");
  // The same writer as encode_png through a FILE* on a growing buffer (POSIX open_memstream).
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  if (!f) fail("encode_png: open_memstream: ", std::strerror(errno));
  PngWriteCtx ctx;
  ctx.msg[0] = 0;
  const bool ok = png_encode(f, &img, &ctx);
  std::fclose(f);  // sets buf/len
  if (ok) out.assign(reinterpret_cast<uint8_t*>(buf), reinterpret_cast<uint8_t*>(buf) + len);
  std::free(buf);
  if (!ok) fail("encode_png: ", ctx.msg);
}

}  // namespace mae
