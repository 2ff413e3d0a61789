#include "api/batcher.h"

#include <chrono>
#include <string>

#include "mae/mae.h"

namespace mae::api_internal {

Batcher::Batcher(int max_batch, int max_queue, std::function<void()> start, Run run)
    : max_batch_(max_batch), max_queue_(max_queue), run_(std::move(run)),
      thread_([this, start = std::move(start)] {
        if (start) start();
        loop();
      }) {}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_.notify_all();
  thread_.join();
}

void Batcher::submit(Job& job, double timeout_s) {
  std::unique_lock<std::mutex> lk(mu_);
  if (queued_images_ > 0 && queued_images_ + job.images > max_queue_)
    throw api::Error(api::Error::Kind::busy, "the model is busy: " + std::to_string(queued_images_) +
                                       " images are waiting (limit " + std::to_string(max_queue_) + "); retry later");
  queue_.push_back(&job);
  queued_images_ += job.images;
  work_.notify_one();
  if (timeout_s > 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    if (!finished_.wait_until(lk, deadline, [&] { return job.started; })) {
      for (auto it = queue_.begin(); it != queue_.end(); ++it)
        if (*it == &job) {
          queue_.erase(it);
          queued_images_ -= job.images;
          break;
        }
      throw api::Error(api::Error::Kind::busy, "the model is busy: this request waited " + std::to_string(int(timeout_s)) +
                                         " s for its turn; retry later");
    }
  }
  finished_.wait(lk, [&] { return job.done; });
  if (job.error) std::rethrow_exception(job.error);
}

void Batcher::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    work_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (stop_ && queue_.empty()) return;
    // The first job, and the later ones of its key while they fit one forward (a job larger than max_batch runs
    // alone, in chunks).
    group_.clear();
    int images = 0;
    const uint64_t key = queue_.front()->key;
    for (auto it = queue_.begin(); it != queue_.end();) {
      Job* j = *it;
      if (j->key == key && (group_.empty() || images + j->images <= max_batch_)) {
        group_.push_back(j);
        images += j->images;
        j->started = true;
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    queued_images_ -= images;
    finished_.notify_all();  // started: their deadlines no longer apply
    lk.unlock();
    std::exception_ptr err;
    try {
      run_(group_);
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    for (Job* j : group_) j->error = err, j->done = true;
    finished_.notify_all();
  }
}

}  // namespace mae::api_internal
