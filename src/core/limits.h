// The allocation budget: how much a file's header or a flag may make mae allocate, stated once. Each reader checks
// the sizes it is given in 64 bits against these before allocating, and its error names the file and the limit.
// Model configs have their own bounds (model/config.cpp: grid, widths, depth, parameter count).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"

namespace mae::limits {

// Decoded image pixels (width × height): PIL's DecompressionBombError threshold (2 × Image.MAX_IMAGE_PIXELS), so
// mae refuses exactly what torchvision's loader refuses.
constexpr uint64_t kImagePixels = 178'956'970;
// Bytes of one encoded image file (a JPEG/PNG larger than this is not a training image).
constexpr uint64_t kImageFileBytes = uint64_t(1) << 30;
// Bytes of one dataset array (IDX images, CIFAR batches) held in memory: 64 GiB.
constexpr uint64_t kDatasetBytes = uint64_t(1) << 36;
// Bytes read from a checkpoint that is a pipe (regular files are mapped, not read; devices are refused): 16 GiB,
// six times a ViT-H checkpoint.
constexpr uint64_t kStreamBytes = uint64_t(16) << 30;
// Tar shards (data/tar_reader.h, data/shard_index.h): a member name with its pax/GNU long form, the bytes of a
// member read into memory whole (labels .cls/.json, pax headers; images are bounded by kImageFileBytes), and the
// number of shard files one pattern may expand to.
constexpr uint64_t kTarNameBytes = 4096;
constexpr uint64_t kShardMetaBytes = uint64_t(1) << 20;
constexpr uint64_t kShardFiles = uint64_t(1) << 20;
// Samples of one dataset (shard indexes hold a count read from a file) and classes of a label (a head's size
// follows it: ImageNet-21k has 21,841).
constexpr uint64_t kDatasetItems = uint64_t(1) << 32;
constexpr int64_t kClasses = int64_t(1) << 20;
// Images in one batch: --batch_size (per process) of every command, and a tensor given to `mae forward --input`. A
// batch is held whole in memory with its activations; the official linear probe's 16384 is well inside.
constexpr int64_t kBatchImages = int64_t(1) << 20;
// Threads: --threads (OpenMP/BLAS) and --num_workers (loader threads).
constexpr int kThreads = 1024;
constexpr int kLoaderWorkers = 256;

inline void check_batch_size(int64_t n) {
  if (n < 1 || n > kBatchImages) fail("--batch_size must be in [1, ", kBatchImages, "], got ", n);
}

// The batch a command that only reads `items` images runs (embed, knn, finetune --eval): a checked --batch_size
// (check_batch_size), no larger than the data, which the model's activations and the loader's ring are sized by.
inline int batch_within(int batch, uint64_t items) {
  return int(std::max<uint64_t>(1, std::min<uint64_t>(uint64_t(batch), items)));
}

// Where no thread count is given (--threads 0, the API's threads 0) OpenMP takes OMP_NUM_THREADS: the same bound,
// checked before the first parallel region (libgomp crashed starting 100000 threads).
inline void check_default_threads() {
  if (const int n = omp_get_max_threads(); n > kThreads) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    fail("OMP_NUM_THREADS=", env ? env : "?", " asks for ", n, " threads; at most ", kThreads,
         " (set it lower, or give --threads)");
  }
}

inline void check_num_workers(int n) {
  if (n < 0 || n > kLoaderWorkers) fail("--num_workers must be in [0, ", kLoaderWorkers, "], got ", n);
}

}  // namespace mae::limits
