#include "cli/bench_loader.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/dataset.h"
#include "data/loader.h"

namespace mae::cli {

namespace {

double cpu_seconds() {  // user + system time of the whole process (all loader threads)
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

void run_loader_bench(const LoaderBenchArgs& a) {
  const auto t_open = std::chrono::steady_clock::now();
  auto ds = open_dataset(a.data_path, "train");
  const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_open).count();
  LoaderConfig lc;
  lc.batch_size = a.batch_size;
  lc.num_workers = a.num_workers;
  lc.decode = parse_decode_mode(a.decode);
  lc.transform.size = a.input_size;
  lc.transform.channels = 3;
  lc.transform.train = true;  // the pretraining recipe: RandomResizedCrop(0.2–1, bicubic) + flip + normalise
  lc.transform.norm = normalization_for_channels(ds->normalization(), 3);
  Loader loader(*ds, lc);
  const int64_t total = loader.batches_per_epoch();
  if (total < 1) fail(ds->description(), ": fewer images than one batch of ", a.batch_size);
  const int64_t want = a.batches > 0 ? std::min<int64_t>(a.batches, total) : total;
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  loader.start_epoch(0);
  int64_t images = 0;
  for (int64_t b = 0; b < want; b++) {
    const Batch* bt = loader.next();
    if (!bt) break;
    images += bt->size;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  nlohmann::json r = {{"data", ds->name()},         {"decode", a.decode},   {"workers", a.num_workers},
                      {"images", images},           {"wall_s", wall},       {"img_s", images / wall},
                      {"cpu_s", cpu},               {"img_per_cpu_s", images / std::max(cpu, 1e-9)},
                      {"open_s", open_s},           {"input_size", a.input_size}};
  if (a.json) {
    std::printf("%s\n", r.dump().c_str());
    return;
  }
  std::printf("loader: %s\n  decode %s, %d workers, %lld images of %dx%d in %.2f s: %.1f img/s, %.1f img per CPU "
              "second (index/listing %.2f s)\n",
              ds->description().c_str(), a.decode.c_str(), a.num_workers, (long long)images, a.input_size,
              a.input_size, wall, images / wall, images / std::max(cpu, 1e-9), open_s);
}

}  // namespace mae::cli
