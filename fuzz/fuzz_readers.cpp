// libFuzzer target for every reader of untrusted bytes: the safetensors reader, the ZIP reader + restricted
// unpickler + .pth tensors, the JPEG/PNG decoder (whole and by region), and tar shards (the ustar/pax reader with
// the shard index built on it, and the index cache file). Each input goes to all of them (each rejects foreign bytes at
// once), and additionally, as a bare pickle, both to the unpickler alone and wrapped into a torch-style archive with
// a few fixed storages, so that mutated pickles reach the tensor code without first having to keep a ZIP intact.
// A reader may reject an input only with mae::Error; any other exception, crash, leak or sanitizer report is a bug.
//
//   fuzz/run.sh [seconds]      (builds with clang -fsanitize=fuzzer,address,undefined into build-fuzz)
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.h"
#include "data/decode.h"
#include "data/shard_index.h"
#include "io/pickle.h"
#include "io/pth.h"
#include "io/safetensors.h"
#include "io/zip_reader.h"

namespace {

using namespace mae;

std::string le(uint64_t v, int n) {
  std::string s(static_cast<size_t>(n), '\0');
  for (int k = 0; k < n; ++k) s[k] = static_cast<char>(v >> (8 * k));
  return s;
}

// A stored ZIP archive of (name, data) entries, laid out as torch.save writes it (minus the alignment padding).
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string file, central;
  for (const auto& [name, data] : entries) {
    const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
    const uint64_t offset = file.size();
    file += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) + le(data.size(), 4) +
            le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) +
               le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) +
               le(0, 2) + le(0, 4) + le(offset, 4) + name;
  }
  const uint64_t cd = file.size();
  file += central + le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) +
          le(central.size(), 4) + le(cd, 4) + le(0, 2);
  return file;
}

// An exact-size heap copy, so that AddressSanitizer sees any read past the end.
io::Bytes copy_of(const std::string& s) {
  auto buf = std::make_shared<std::vector<uint8_t>>(s.begin(), s.end());
  return io::Bytes{std::shared_ptr<const void>(buf, buf->data()), buf->data(), buf->size()};
}

void read_archive(const std::string& bytes) {
  try {
    const io::ZipReader zip(copy_of(bytes), "fuzz.pth");
    const io::PthContents pc = io::read_pth(zip);
    for (const auto& [name, t] : pc.tensors) (void)(t.f.size() + t.i.size() + name.size());
  } catch (const Error&) {
  }
}

const std::string& temp_path() {
  static const std::string p = "/tmp/mae_fuzz_" + std::to_string(::getpid()) + ".safetensors";
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  // 1. A ZIP archive / .pth checkpoint.
  read_archive(bytes);

  // 2. A bare pickle: alone, and as the data.pkl of an archive whose storages "0".."3" hold 16 floats each.
  try {
    const io::pickle::Unpickler up(data, size, "fuzz.pkl");
    (void)up.root();
  } catch (const Error&) {
  }
  if (size > 2 && data[0] == 0x80) {
    std::string storage(64, '\0');
    for (int k = 0; k < 64; ++k) storage[k] = static_cast<char>(k * 37);
    read_archive(stored_zip({{"archive/data.pkl", bytes},
                             {"archive/data/0", storage},
                             {"archive/data/1", storage},
                             {"archive/data/2", storage.substr(0, 10)},
                             {"archive/data/3", storage}}));
  }

  // 3. A safetensors file (the reader takes a path).
  if (size >= 8) {
    if (FILE* f = std::fopen(temp_path().c_str(), "wb")) {
      std::fwrite(data, 1, size, f);
      std::fclose(f);
      try {
        const io::SafeTensorsReader r(temp_path());
        for (const std::string& n : r.names()) {
          const io::TensorEntry& e = r.entry(n);
          if (e.dtype == io::DType::F32 || e.dtype == io::DType::F16 || e.dtype == io::DType::BF16 ||
              e.dtype == io::DType::F64)
            (void)r.read_f32(n);
          else
            (void)r.read_i64(n);
        }
      } catch (const Error&) {
      }
    }
  }

  // 4. A JPEG or PNG image; a JPEG also by region, at a DCT scale, as --decode fast reads it.
  try {
    Image img;
    decode_image_memory(data, size, "fuzz.img", img);
  } catch (const Error&) {
  }
  try {
    JpegInfo info;
    if (read_jpeg_info(data, size, "fuzz.jpg", info) && !info.cmyk) {
      const int d = 1 << (size % 4), w = (info.width + d - 1) / d, h = (info.height + d - 1) / d;
      Image region;
      int x0 = 0;
      decode_jpeg_region(data, size, "fuzz.jpg", d, w / 3, h / 4, w / 3 + (w + 1) / 2, h / 4 + (h + 1) / 2, region, x0);
    }
  } catch (const Error&) {
  }

  // 5. A tar shard (its index built from the headers), and the same bytes as an index cache file.
  if (size >= 512) {
    static const std::string tar = "/tmp/mae_fuzz_" + std::to_string(::getpid()) + ".tar";
    if (FILE* f = std::fopen(tar.c_str(), "wb")) {
      std::fwrite(data, 1, size, f);
      std::fclose(f);
      const int fd = ::open(tar.c_str(), O_RDONLY);
      try {
        const ShardIndex idx = build_shard_index(fd, size, 0, tar);
        for (size_t i = 0; i < idx.samples.size(); i++) (void)idx.key(i).size();
      } catch (const Error&) {
      }
      ::close(fd);
      ShardIndex cached;
      if (load_shard_index(tar, 1 << 20, 0, cached))
        for (size_t i = 0; i < cached.samples.size(); i++) (void)cached.key(i).size();
    }
  }
  return 0;
}
