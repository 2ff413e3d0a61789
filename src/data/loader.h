// Prefetching batch loader. Worker threads decode and augment samples ahead of the consumer into a small ring of
// preallocated batches. Everything a batch holds is a function of (seed, epoch, batch index) alone:
//   order:        a permutation of the dataset per epoch from Rng::keyed(derive(seed, stream::shuffle), epoch, 0)
//   augmentation: sample with dataset index k in epoch e uses Rng::keyed(derive(seed, stream::augment), e, k)
// so the thread count, the scheduling and resuming mid-epoch never change a single value.
//
// Sharding (data parallel): global batch b covers permutation positions [b·G, b·G + n_b) with G = batch_size·world
// (n_b = G except for a final partial batch when !drop_last); rank r takes positions [r·n_b/world,
// (r+1)·n_b/world) of it, so the ranks' slices are disjoint and together cover the global batch. With a full global
// batch every rank gets exactly batch_size samples; a final partial one can leave a rank fewer (even none).
//
// Corrupt images: a sample that fails to decode makes next() throw the mae::Error naming the file when the consumer
// reaches that batch (the batches before it are delivered). We stop instead of skipping with a warning because
// skipping changes the batch composition: every later batch of the epoch would shift, resume-at-batch would no longer
// reproduce the same data, and data-parallel ranks would disagree on batch contents. Remove the file and restart.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace mae {

// --decode: exact = decode the whole file, then crop (PIL's bytes); fast = decode only the crop, at a reduced DCT
// scale where it is large (data/crop_decode.h; train-mode JPEGs; everything else is decoded exactly).
enum class DecodeMode { exact, fast };
DecodeMode parse_decode_mode(const std::string& s);  // "exact" | "fast"; throws naming --decode otherwise

struct LoaderConfig {
  int batch_size = 64;  // per rank
  TransformConfig transform;
  DecodeMode decode = DecodeMode::exact;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;
  int num_workers = 2;  // 0: the consumer decodes each batch itself inside next()
  int prefetch = 0;     // batches in the ring; 0 = num_workers + 1 (at least 2)
  int rank = 0, world = 1;

  // Every sample once, in dataset order, the last batch partial: for feature extraction and evaluation.
  static LoaderConfig in_order(int batch_size, const TransformConfig& t, int num_workers) {
    LoaderConfig c;
    c.batch_size = batch_size;
    c.transform = t;
    c.shuffle = false;
    c.drop_last = false;
    c.num_workers = num_workers;
    return c;
  }
};

struct Batch {
  int size = 0;                  // B: samples in this batch (batch_size, or fewer for a final partial batch)
  int channels = 0, img = 0;     // C, S
  int epoch = 0;
  int64_t index = 0;             // batch index within the epoch
  std::vector<float> images;     // (B, C, S, S); capacity for batch_size
  std::vector<int32_t> labels;   // (B)
  std::vector<int64_t> indices;  // (B) dataset indices
};

class Loader {
 public:
  Loader(const Dataset& ds, const LoaderConfig& cfg);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  const LoaderConfig& config() const { return cfg_; }
  int64_t batches_per_epoch() const;
  // Positions the loader at batch `first_batch` of `epoch` (exact resume) and starts prefetching it.
  void start_epoch(int epoch, int64_t first_batch = 0);
  // The next batch of the current epoch, or nullptr at its end. The batch stays valid until the next call to next()
  // or start_epoch(). Throws mae::Error (naming the file) if a sample of this batch could not be loaded.
  const Batch* next();

 private:
  void stop_workers();  // ask every worker to end and join them
  struct Slot {
    Batch batch;
    int64_t id = -1;       // batch index it is being filled for (-1: free)
    int remaining = 0;     // samples not yet written
    int error_sample = -1; // lowest sample that failed, and its error: the same one whatever the timing
    std::exception_ptr error;
  };
  struct Task {
    int64_t batch;
    int sample;
  };

  void worker(int w);
  bool take_task(Task& t);  // with mu_ held
  // Per worker: the transform's buffers, the decoded picture, the encoded file (--decode fast).
  struct Scratch {
    TransformScratch transform;
    Image img;
    std::vector<uint8_t> file;
  };
  void run_task(const Task& t, Scratch& scratch);
  void finish_task(const Task& t, std::exception_ptr err);  // with mu_ held
  std::exception_ptr named_error(const Task& t, const Error& e) const;
  void setup_batch(int64_t b);                                 // with mu_ held
  int64_t batch_count() const;
  std::pair<int64_t, int> batch_span(int64_t b) const;  // (first permutation position, size) of this rank's slice

  const Dataset& ds_;
  LoaderConfig cfg_;
  Transform transform_;
  std::vector<Slot> ring_;
  std::vector<int64_t> perm_;
  int epoch_ = -1;
  int64_t next_deliver_ = 0, end_ = 0;  // batches [next_deliver_, end_) are still to be handed out
  int64_t held_ = -1;                    // batch the consumer holds (its slot is not recycled until next())
  Task cursor_{0, 0};                    // next sample to hand to a worker
  int in_flight_ = 0;
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> threads_;
  Scratch inline_scratch_;  // for num_workers == 0
};

}  // namespace mae
