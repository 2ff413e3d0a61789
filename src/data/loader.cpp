#include "data/loader.h"

#include <algorithm>
#include <numeric>
#include <system_error>

#include "core/error.h"
#include "core/limits.h"
#include "core/rng.h"
#include "data/decode.h"

namespace mae {

DecodeMode parse_decode_mode(const std::string& s) {
  if (s == "exact") return DecodeMode::exact;
  if (s == "fast") return DecodeMode::fast;
  fail("--decode must be exact or fast, got '", s, "'");
}

Loader::Loader(const Dataset& ds, const LoaderConfig& cfg) : ds_(ds), cfg_(cfg), transform_(cfg.transform) {
  limits::check_batch_size(cfg.batch_size);
  if (cfg.world < 1 || cfg.rank < 0 || cfg.rank >= cfg.world)
    fail("loader: rank ", cfg.rank, " of world ", cfg.world);
  limits::check_num_workers(cfg.num_workers);
  if (ds.size() == 0) fail("loader: dataset ", ds.description(), " is empty");
  int ring = cfg.prefetch > 0 ? cfg.prefetch : std::max(2, cfg.num_workers + 1);
  ring_.resize(size_t(ring));
  const size_t per_image = size_t(cfg.transform.channels) * cfg.transform.size * cfg.transform.size;
  for (auto& s : ring_) {  // allocated and touched once: batches only resize within it afterwards
    s.batch.images.resize(per_image * cfg.batch_size);
    s.batch.labels.reserve(size_t(cfg.batch_size));
    s.batch.indices.reserve(size_t(cfg.batch_size));
  }
  try {
    for (int w = 0; w < cfg.num_workers; w++) threads_.emplace_back([this, w] { worker(w); });
  } catch (const std::system_error& e) {  // out of threads or memory: stop the ones started, then say so
    const size_t started = threads_.size();
    stop_workers();
    fail("loader: cannot start loader thread ", started + 1, " of --num_workers ", cfg.num_workers, ": ", e.what(),
         " (use fewer --num_workers)");
  }
}

Loader::~Loader() { stop_workers(); }

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

int64_t Loader::batch_count() const {
  const int64_t n = int64_t(ds_.size()), g = int64_t(cfg_.batch_size) * cfg_.world;
  return cfg_.drop_last ? n / g : (n + g - 1) / g;
}

int64_t Loader::batches_per_epoch() const { return batch_count(); }

std::pair<int64_t, int> Loader::batch_span(int64_t b) const {
  const int64_t n = int64_t(ds_.size()), g = int64_t(cfg_.batch_size) * cfg_.world;
  const int64_t start = b * g, nb = std::min(g, n - start);
  const int64_t lo = cfg_.rank * nb / cfg_.world, hi = (cfg_.rank + 1) * nb / cfg_.world;
  return {start + lo, int(hi - lo)};
}

void Loader::start_epoch(int epoch, int64_t first_batch) {
  const int64_t count = batch_count();
  if (first_batch < 0 || first_batch > count)
    fail("loader: cannot start epoch ", epoch, " at batch ", first_batch, " (the epoch has ", count, " batches)");
  std::unique_lock<std::mutex> lk(mu_);
  // Stop handing out work and let the samples in flight land (in slots nobody will read) before reusing the ring.
  end_ = 0;
  cursor_ = {0, 0};
  done_cv_.wait(lk, [&] { return in_flight_ == 0; });
  if (epoch != epoch_ || perm_.size() != ds_.size()) {
    perm_.resize(ds_.size());
    std::iota(perm_.begin(), perm_.end(), int64_t(0));
    if (cfg_.shuffle) {  // Fisher–Yates from the back, as numpy's shuffle
      Rng rng = Rng::keyed(Rng::derive(cfg_.seed, stream::shuffle), uint64_t(epoch), 0);
      for (size_t i = perm_.size() - 1; i > 0; i--) std::swap(perm_[i], perm_[rng.uniform_int(i + 1)]);
    }
  }
  epoch_ = epoch;
  for (auto& s : ring_) s.id = -1;
  next_deliver_ = first_batch;
  end_ = count;
  held_ = -1;
  cursor_ = {first_batch, 0};
  lk.unlock();
  work_cv_.notify_all();
}

void Loader::setup_batch(int64_t b) {
  Slot& s = ring_[size_t(b % int64_t(ring_.size()))];
  auto [first, size] = batch_span(b);
  const int C = cfg_.transform.channels, S = cfg_.transform.size;
  s.id = b;
  s.remaining = size;
  s.error_sample = -1;
  s.error = nullptr;
  Batch& bt = s.batch;
  bt.size = size, bt.channels = C, bt.img = S, bt.epoch = epoch_, bt.index = b;
  bt.images.resize(size_t(size) * C * S * S);
  bt.labels.resize(size_t(size));
  bt.indices.resize(size_t(size));
}

bool Loader::take_task(Task& t) {
  const int64_t ring = int64_t(ring_.size());
  const int64_t window_lo = held_ >= 0 ? held_ : next_deliver_;  // oldest batch whose slot is still in use
  while (!stop_ && cursor_.batch < end_ && cursor_.batch < window_lo + ring) {
    if (cursor_.sample == 0) setup_batch(cursor_.batch);
    const Slot& s = ring_[size_t(cursor_.batch % ring)];
    if (cursor_.sample >= s.batch.size) {  // an empty slice (a final partial batch split over many ranks)
      cursor_ = {cursor_.batch + 1, 0};
      done_cv_.notify_all();
      continue;
    }
    t = cursor_;
    if (++cursor_.sample == s.batch.size) cursor_ = {cursor_.batch + 1, 0};
    in_flight_++;
    return true;
  }
  return false;
}

void Loader::run_task(const Task& t, Scratch& scratch) {
  // Runs without the lock: the slot is set up and only this task writes sample t.sample of it.
  Batch& bt = ring_[size_t(t.batch % int64_t(ring_.size()))].batch;
  const int64_t idx = perm_[size_t(batch_span(t.batch).first + t.sample)];
  const size_t per_image = size_t(bt.channels) * bt.img * bt.img;
  float* out = bt.images.data() + size_t(t.sample) * per_image;
  Rng rng = Rng::keyed(Rng::derive(cfg_.seed, stream::augment), uint64_t(bt.epoch), uint64_t(idx));
  if (cfg_.decode == DecodeMode::fast && ds_.load_encoded(size_t(idx), scratch.file)) {
    const std::string name = ds_.item_name(size_t(idx));
    const uint8_t* f = scratch.file.data();
    if (!transform_.apply_encoded(f, scratch.file.size(), name, rng, out, scratch.transform)) {
      decode_image_memory(f, scratch.file.size(), name, scratch.img);  // PNG, CMYK, eval: the exact path
      transform_.apply(scratch.img, rng, out, scratch.transform);
    }
  } else {
    ds_.load(size_t(idx), scratch.img);
    transform_.apply(scratch.img, rng, out, scratch.transform);
  }
  bt.labels[size_t(t.sample)] = ds_.label(size_t(idx));
  bt.indices[size_t(t.sample)] = idx;
}

std::exception_ptr Loader::named_error(const Task& t, const Error& e) const {
  // Decoders already name the file; other failures (a transform's) get the item's name in front.
  std::string item = ds_.item_name(size_t(perm_[size_t(batch_span(t.batch).first + t.sample)]));
  std::string what = e.what();
  if (what.find(item) != std::string::npos) return std::make_exception_ptr(e);
  return std::make_exception_ptr(Error(item + ": " + what));
}

void Loader::finish_task(const Task& t, std::exception_ptr err) {
  Slot& s = ring_[size_t(t.batch % int64_t(ring_.size()))];
  in_flight_--;
  if (s.id == t.batch) {
    if (err && (s.error_sample < 0 || t.sample < s.error_sample)) s.error_sample = t.sample, s.error = err;
    s.remaining--;
  }
  if (s.remaining == 0 || in_flight_ == 0) done_cv_.notify_all();
}

void Loader::worker(int) {
  Scratch scratch;  // per thread, reused: no allocation per sample beyond what decoding needs
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    Task t;
    work_cv_.wait(lk, [&] { return stop_ || take_task(t); });
    if (stop_) return;
    lk.unlock();
    std::exception_ptr err;
    try {
      run_task(t, scratch);
    } catch (const Error& e) {
      err = named_error(t, e);
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    finish_task(t, err);
  }
}

const Batch* Loader::next() {
  std::unique_lock<std::mutex> lk(mu_);
  if (epoch_ < 0) fail("loader: next() before start_epoch()");
  if (held_ >= 0) {  // the consumer is done with the previous batch: its slot can take a new one
    ring_[size_t(held_ % int64_t(ring_.size()))].id = -1;
    held_ = -1;
    work_cv_.notify_all();
  }
  if (next_deliver_ >= end_) return nullptr;
  const int64_t b = next_deliver_;
  Slot& s = ring_[size_t(b % int64_t(ring_.size()))];
  auto ready = [&] { return s.id == b && s.remaining == 0; };
  if (threads_.empty()) {
    Task t;
    while (!ready() && take_task(t)) {
      std::exception_ptr err;
      try {
        run_task(t, inline_scratch_);
      } catch (const Error& e) {
        err = named_error(t, e);
      } catch (...) {
        err = std::current_exception();
      }
      finish_task(t, err);
    }
  } else {
    done_cv_.wait(lk, ready);
  }
  MAE_CHECK(ready(), "loader: batch ", b, " not filled");
  next_deliver_++;
  held_ = b;
  if (s.error) std::rethrow_exception(s.error);
  return &s.batch;
}

}  // namespace mae
