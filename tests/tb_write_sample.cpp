// tb_write_sample DIR [TAG VALUE STEP]...: writes one TensorBoard event file in DIR with those scalars and prints
// its path. Only for tests/tensorboard_py.sh, which decodes the file with Google's protobuf library (the training
// commands are not the place to test the file format).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "train/tensorboard.h"

int main(int argc, char** argv) {
  if (argc < 2 || (argc - 2) % 3 != 0) {
    std::fprintf(stderr, "usage: tb_write_sample DIR [TAG VALUE STEP]...\n");
    return 2;
  }
  try {
    mae::TensorBoardWriter w(argv[1]);
    for (int i = 2; i + 2 < argc; i += 3)
      w.add_scalar(argv[i], std::strtod(argv[i + 1], nullptr), std::stoll(argv[i + 2]));
    w.flush();
    std::printf("%s\n", w.path().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
