// libFuzzer target: CIFAR-10 binary batches (1 label byte + 3072 pixel bytes per record) with a batches.meta.txt
// of class names, read as the dataset reads them, every record loaded and named.
//   input byte 0 = n, the next n bytes = the meta file, the rest = the batch file.
#include "../fuzz_common.h"
#include "core/error.h"
#include "data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  if (size < 1) return 0;
  const size_t n = std::min<size_t>(data[0], size - 1);
  const std::string meta = fuzz::write_temp(".meta.txt", data + 1, n);
  const std::string batch = fuzz::write_temp(".data_batch_1.bin", data + 1 + n, size - 1 - n);
  try {
    const CifarDataset ds({batch}, meta);
    FUZZ_CHECK(ds.size() * CifarDataset::kRecord == size - 1 - n);
    (void)ds.description();
    Image img;
    for (size_t i = 0; i < ds.size(); i++) {
      ds.load(i, img);
      FUZZ_CHECK(img.px.size() == CifarDataset::kRecord - 1);
      FUZZ_CHECK(ds.label(i) >= 0 && ds.label(i) < 10);
      (void)ds.item_name(i);
    }
  } catch (const Error&) {
  }
  return 0;
}
