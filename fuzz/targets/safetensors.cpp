// libFuzzer target: the safetensors reader (header JSON, dtypes, shapes, offsets) and reading every tensor as the
// loaders do (float dtypes converted to f32, integers to i64).
#include "../fuzz_common.h"
#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  const std::string path = fuzz::write_temp(".safetensors", data, size);
  try {
    const io::SafeTensorsReader r(path);
    for (const std::string& n : r.names()) {
      const io::TensorEntry& e = r.entry(n);
      std::vector<int64_t> shape;
      if (e.dtype == io::DType::F32 || e.dtype == io::DType::F16 || e.dtype == io::DType::BF16 ||
          e.dtype == io::DType::F64) {
        const std::vector<float> v = r.read_f32(n, &shape);
        int64_t numel = 1;
        for (int64_t d : shape) numel *= d;
        FUZZ_CHECK(int64_t(v.size()) == numel);
      } else {
        (void)r.read_i64(n, &shape);
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
