// libFuzzer target: IDX files (MNIST / Fashion-MNIST), plain and gzipped, read as the dataset reads them; when a
// rank-3 file is accepted, also as the images of an IdxDataset (with a matching labels file) and every image loaded.
//   input byte 0: bit 0 = gzip the rest before reading it (so the inflate path sees valid streams of mutated
//   content; raw gzip bytes are reachable too, since gzread reads plain files unchanged), bits 1-2 = the rank asked.
#include <zlib.h>

#include "../fuzz_common.h"
#include "core/error.h"
#include "data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  if (size < 1) return 0;
  const bool gz = data[0] & 1;
  const int ndim = 1 + (data[0] >> 1) % 3;
  std::string path;
  if (gz) {
    path = fuzz::write_temp(".idx.gz", nullptr, 0);
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f) return 0;
    if (size > 1) gzwrite(f, data + 1, unsigned(size - 1));
    gzclose(f);
  } else {
    path = fuzz::write_temp(".idx", data + 1, size - 1);
  }
  try {
    std::vector<int> dims;
    const std::vector<uint8_t> v = read_idx_file(path, ndim, dims);
    FUZZ_CHECK(int(dims.size()) == ndim);
    size_t numel = 1;
    for (int d : dims) numel *= size_t(d);
    FUZZ_CHECK(v.size() == numel);
    if (ndim == 3 && dims[0] <= 64) {
      // a labels file of dims[0] labels: magic 0x00000801, the count big-endian, then the labels
      std::string labels = std::string("\x00\x00\x08\x01", 4) + char(0) + char(0) + char(0) + char(dims[0]);
      for (int i = 0; i < dims[0]; i++) labels += char(v.empty() ? 0 : v[size_t(i) % v.size()] % 10);
      const std::string lpath = fuzz::write_temp(".labels.idx", labels.data(), labels.size());
      const IdxDataset ds(path, lpath, "");
      FUZZ_CHECK(ds.size() == size_t(dims[0]));
      Image img;
      for (size_t i = 0; i < ds.size(); i++) {
        ds.load(i, img);
        FUZZ_CHECK(ds.label(i) >= 0 && ds.label(i) < ds.num_classes());
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
