// The queue between the threads that call the API and the one compute thread that owns the networks. Jobs that wait
// at the same time with the same key (the same kind of forward) are handed to the compute thread together, up to
// max_batch images, so concurrent requests share one forward instead of queueing one by one; under no load a job runs
// at once (no batching window). One compute thread also keeps every OpenMP/BLAS parallel region on one thread's team.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mae::api_internal {


struct Job {
  uint64_t key = 0;  // jobs with equal keys may run in one forward
  int images = 0;
  // owned by the batcher
  bool started = false, done = false;
  std::exception_ptr error;
};

class Batcher {
 public:
  // run(group): the jobs of one key, in arrival order, on the compute thread. An exception fails every job of the
  // group. `start` runs first on the compute thread (thread settings).
  using Run = std::function<void(const std::vector<Job*>&)>;
  Batcher(int max_batch, int max_queue, std::function<void()> start, Run run);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Blocks until the job has run; rethrows its exception. Throws Error(busy) when the queue holds max_queue images
  // already, or when timeout_s (> 0) passes before the job starts (a started forward is never abandoned).
  void submit(Job& job, double timeout_s);

 private:
  void loop();

  const int max_batch_, max_queue_;
  const Run run_;
  std::mutex mu_;
  std::condition_variable work_, finished_;
  std::deque<Job*> queue_;
  int queued_images_ = 0;
  bool stop_ = false;
  std::vector<Job*> group_;  // the compute thread's, reused
  std::thread thread_;       // last: starts after everything above exists
};

}  // namespace mae::api_internal
