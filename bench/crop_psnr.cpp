// How far --decode fast is from the exact path: for every JPEG of a dataset and a few augmentation keys each, the
// training crop (RandomResizedCrop(S, 0.2–1) + flip, 8-bit, before normalisation) both ways, and the PSNR between
// them, grouped by the DCT scale the fast path used (1 = bit-identical by construction).
//   ninja -C build crop_psnr && build/crop_psnr DATA [--size 224] [--keys 4] [--max 1000]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/crop_decode.h"
#include "data/dataset.h"
#include "data/decode.h"
#include "data/transforms.h"

using namespace mae;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATA [--size S] [--keys K] [--max N]\n", argv[0]);
    return 2;
  }
  int S = 224, keys = 4;
  size_t max = 1000;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--size") S = std::atoi(argv[i + 1]);
    if (f == "--keys") keys = std::atoi(argv[i + 1]);
    if (f == "--max") max = size_t(std::atol(argv[i + 1]));
  }
  auto ds = open_dataset(argv[1], "train");
  TransformConfig tc;
  tc.size = S, tc.channels = 3, tc.train = true;
  const Transform tf(tc);
  TransformScratch s1, s2;
  std::vector<uint8_t> file;
  Image full, exact, fast;
  struct Acc {
    double sum = 0, worst = 1e9;
    int n = 0, identical = 0;
  };
  std::map<int, Acc> by_denom;
  const size_t n = std::min(max, ds->size());
  for (size_t i = 0; i < n; i++) {
    if (!ds->load_encoded(i, file)) {
      std::fprintf(stderr, "%s holds no encoded files\n", argv[1]);
      return 1;
    }
    JpegInfo info;
    if (!read_jpeg_info(file.data(), file.size(), ds->item_name(i), info) || info.cmyk) continue;
    decode_image_memory(file.data(), file.size(), ds->item_name(i), full);
    for (int k = 0; k < keys; k++) {
      Rng ra = Rng::keyed(Rng::derive(0, stream::augment), uint64_t(k), i), rb = ra, rc = ra;
      const CropBox box = random_resized_crop_params(info.height, info.width, 0.2, 1.0, 3.0 / 4, 4.0 / 3, rc);
      tf.apply_u8(full, ra, exact, s1);
      tf.apply_encoded_u8(file.data(), file.size(), ds->item_name(i), rb, fast, s2);
      double se = 0;
      for (size_t p = 0; p < exact.px.size(); p++) se += std::pow(double(exact.px[p]) - fast.px[p], 2);
      const double mse = se / double(exact.px.size());
      const double psnr = mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
      Acc& a = by_denom[crop_dct_denom(box, S, S)];
      a.sum += psnr, a.worst = std::min(a.worst, psnr), a.n++, a.identical += mse == 0;
    }
  }
  std::printf("| DCT scale | crops | share | bit-identical | mean PSNR (dB, 99 = identical) | worst PSNR (dB) |\n"
              "|---|---:|---:|---:|---:|---:|\n");
  int total = 0;
  for (const auto& [d, a] : by_denom) total += a.n;
  for (const auto& [d, a] : by_denom)
    std::printf("| 1/%d | %d | %.1f %% | %d | %.2f | %.2f |\n", d, a.n, 100.0 * a.n / total, a.identical, a.sum / a.n,
                a.worst);
  return 0;
}
