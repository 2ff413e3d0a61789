// Using mae from C++: load a checkpoint, read an image file, print its encoder features (and, for a fine-tuned
// classifier, its top classes). Built against the installed library: see examples/CMakeLists.txt, or
//   g++ -std=c++17 embed_image.cpp $(pkg-config --cflags --libs mae) -o embed_image
// Usage: embed_image CHECKPOINT IMAGE [--mean]
#include <mae/mae.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CHECKPOINT IMAGE [--mean]\n", argv[0]);
    return 2;
  }
  std::ifstream f(argv[2], std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  try {
    const auto model = mae::api::Model::load(argv[1]);
    const mae::api::ModelInfo& info = model->info();
    const mae::api::Pixels img = mae::api::decode_image(bytes.data(), bytes.size());
    std::printf("model: %s (%s), %d px, width %d; image %dx%d, %d channel(s)\n", info.path.c_str(), info.kind.c_str(),
                info.img_size, info.embed_dim, img.width, img.height, img.channels);
    if (info.can_classify) {
      const auto top = model->classify({img}, 3);  // kept: a range-for over top[0] of a temporary would dangle
      for (const auto& c : top[0]) std::printf("class %s: %.4f\n", c.name.c_str(), c.prob);
      return 0;
    }
    const bool mean = argc > 3 && std::strcmp(argv[3], "--mean") == 0;
    const std::vector<float> feat = model->embed({img}, mean ? mae::api::Pool::mean : mae::api::Pool::cls)[0];
    std::printf("features (%s, %zu):", mean ? "mean of patches" : "cls", feat.size());
    for (size_t i = 0; i < feat.size() && i < 8; i++) std::printf(" %.5f", feat[i]);
    std::printf("%s\n", feat.size() > 8 ? " ..." : "");
  } catch (const mae::api::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.kind() == mae::api::Error::Kind::bad_input ? 1 : 3;
  }
  return 0;
}
