// libFuzzer target: PyTorch checkpoints — the ZIP reader (stored, deflate, ZIP64), the restricted unpickler and the
// tensor rebuilder of io/pth. Each input is read as an archive, as a bare pickle, and (when it looks like a pickle)
// as the data.pkl of an archive with a few fixed storages, so that mutated pickles reach the tensor code without
// first having to keep a ZIP intact.
#include "../fuzz_common.h"
#include "core/error.h"
#include "io/pickle.h"
#include "io/pth.h"
#include "io/zip_reader.h"

namespace {

void read_archive(const std::string& bytes) {
  using namespace mae;
  try {
    const io::ZipReader zip(fuzz::copy_of(bytes), "fuzz.pth");
    const io::PthContents pc = io::read_pth(zip);
    for (const auto& [name, t] : pc.tensors) {
      int64_t numel = 1;
      for (int64_t d : t.shape) numel *= d;
      FUZZ_CHECK(int64_t(t.f.size() + t.i.size()) == numel);
      (void)name.size();
    }
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mae;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  read_archive(bytes);
  try {
    const io::pickle::Unpickler up(data, size, "fuzz.pkl");
    (void)up.root();
  } catch (const Error&) {
  }
  if (size > 2 && data[0] == 0x80) {
    std::string storage(64, '\0');
    for (int k = 0; k < 64; ++k) storage[k] = static_cast<char>(k * 37);
    read_archive(fuzz::stored_zip({{"archive/data.pkl", bytes},
                                   {"archive/data/0", storage},
                                   {"archive/data/1", storage},
                                   {"archive/data/2", storage.substr(0, 10)},
                                   {"archive/data/3", storage}}));
  }
  return 0;
}
