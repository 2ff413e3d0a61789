// mae bench --loader: images/s of the training input pipeline alone (decode + RandomResizedCrop + flip +
// normalise, the loader's worker threads), for bench/loader.sh.
#pragma once
#include <string>

namespace mae::cli {

struct LoaderBenchArgs {
  std::string data_path, decode = "exact";
  int input_size = 224, batch_size = 64, num_workers = 2, batches = 0;  // batches 0: one epoch
  bool json = false;
};

void run_loader_bench(const LoaderBenchArgs& a);

}  // namespace mae::cli
