#include "train/engine.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/limits.h"
#include "core/progress.h"
#include "data/loader.h"
#include "dist/comm.h"
#include "train/preempt.h"
#include "train/run_dir.h"
#include "train/schedule.h"

namespace mae {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void check_one_batch(const Dataset& ds, int batch_size, int world) {
  if (int64_t(ds.size()) < int64_t(batch_size) * world)
    fail(ds.description(), ": ", ds.size(), " images is fewer than one batch of ", batch_size,
         world > 1 ? " × " + std::to_string(world) + " ranks" : std::string(), " (training drops the last partial batch)");
}

void validate(const RunArgs& a) {
  auto finite_ge0 = [](double v) { return std::isfinite(v) && v >= 0; };
  limits::check_batch_size(a.batch_size);
  if (a.epochs < 1) fail("--epochs must be ≥ 1, got ", a.epochs);
  if (a.accum_iter < 1) fail("--accum_iter must be ≥ 1, got ", a.accum_iter);
  if (!finite_ge0(a.lr)) fail("--lr must be a finite number ≥ 0 (0: from --blr), got ", a.lr);
  if (!(std::isfinite(a.blr) && a.blr > 0)) fail("--blr must be a finite number > 0, got ", a.blr);
  if (!finite_ge0(a.min_lr)) fail("--min_lr must be a finite number ≥ 0, got ", a.min_lr);
  if (!finite_ge0(a.warmup_epochs)) fail("--warmup_epochs must be a finite number ≥ 0, got ", a.warmup_epochs);
  if (a.max_steps < 0) fail("--max_steps must be ≥ 0, got ", a.max_steps);
  if (a.stop_epoch < 0) fail("--stop_epoch must be ≥ 0, got ", a.stop_epoch);
  limits::check_num_workers(a.num_workers);
  parse_decode_mode(a.decode);
  if (a.start_epoch < -1 || a.start_epoch >= a.epochs)
    fail("--start_epoch must be in 0..", a.epochs - 1, " (below --epochs ", a.epochs, "), got ", a.start_epoch);
  if (a.save_every < 0) fail("--save_every must be ≥ 0, got ", a.save_every);
  if (a.save_every_steps < 0) fail("--save_every_steps must be ≥ 0, got ", a.save_every_steps);
  if (!finite_ge0(a.save_every_minutes))
    fail("--save_every_minutes must be a finite number ≥ 0, got ", a.save_every_minutes);
  if (a.keep_last < 0) fail("--keep_last must be ≥ 0 (0: keep all), got ", a.keep_last);
  if (!(a.print_every_s > 0)) fail("--print_every_s must be > 0, got ", a.print_every_s);
}

std::string resolve_resume(const RunArgs& a) {
  std::string r = a.resume;
  if (dist::is_root() && r == "auto") {
    r = find_latest_checkpoint(a.output_dir);
    if (r.empty()) std::fprintf(stderr, "resume auto: no checkpoint in %s, starting fresh\n", a.output_dir.c_str());
  }
  dist::broadcast(r);
  return r;
}

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The checkpoint's position is a micro-batch index in units of its global batch (batch_size × world_size of the run
// that wrote it). Resuming with another global batch (another rank count at the same per-rank batch, say) keeps the
// sample position when it falls on a batch boundary of the new run, and refuses otherwise.
int64_t rebase_position(const std::string& path, const nlohmann::json& ck_args, const RunState& st, int64_t new_g,
                        int64_t iters) {
  const int64_t old_g = ck_args.is_object() ? ck_args.value("global_batch", new_g) : new_g;
  if (old_g == new_g || st.next_batch == 0) return st.next_batch;
  const int64_t sample = st.next_batch * old_g;
  if (sample % new_g != 0 || st.pending_grads)
    fail(path, ": stopped mid-epoch after ", sample, " samples of global batches of ", old_g,
         ", which is not a whole number of this run's global batches of ", new_g,
         " (--batch_size × ranks); resume with a global batch of ", old_g, " or from an epoch checkpoint");
  std::fprintf(stderr, "global batch %lld -> %lld: resuming at sample %lld = batch %lld of %lld\n", (long long)old_g,
               (long long)new_g, (long long)sample, (long long)(sample / new_g), (long long)iters);
  return sample / new_g;
}

class Engine {
 public:
  Engine(const RunArgs& a, TrainTask& t)
      : a_(a), t_(t), world_(dist::world()), root_(dist::is_root()), dir_(a, root_),
        iters_(t.batches_per_epoch()), end_epoch_(a.stop_epoch > 0 ? std::min(a.stop_epoch, a.epochs) : a.epochs),
        progress_(a.print_every_s) {
    const int64_t eff = int64_t(a.batch_size) * a.accum_iter * world_;  // main_*.py: × misc.get_world_size()
    lr_ = a.lr > 0 ? a.lr : a.blr * double(eff) / 256.0;
    if (a.accum_iter > iters_)
      fail("--accum_iter ", a.accum_iter, " is more than the ", iters_, " batches of an epoch: the optimizer would "
           "never step (accumulation starts afresh every epoch, as in the official loop)");
    const long per_epoch = long(iters_ / a.accum_iter);
    total_steps_ = a.max_steps > 0 ? std::min<long>(a.max_steps, long(end_epoch_) * per_epoch)
                                   : long(end_epoch_) * per_epoch;
    args_ = t.args();
    args_["global_batch"] = int64_t(a.batch_size) * world_;
    args_["world_size"] = world_;
    args_["threads"] = omp_get_max_threads();
    if (!root_) return;
    std::fprintf(stderr, "base lr: %.3e  actual lr: %.3e  accumulate grad iterations: %d  effective batch size: "
                 "%lld  threads: %d  workers: %d%s\n", lr_ * 256.0 / double(eff), lr_, a.accum_iter, (long long)eff,
                 omp_get_max_threads(), a.num_workers, t.tag().c_str());
    if (a.warmup_epochs >= a.epochs)
      std::fprintf(stderr, "warning: --warmup_epochs %g ≥ --epochs %d: the lr never reaches its peak %.3e\n",
                   a.warmup_epochs, a.epochs, lr_);
    if (world_ > 1)
      std::fprintf(stderr, "data parallel: %d ranks × batch %d (global batch %lld), %d threads per rank, %d ranks "
                   "on this node\n", world_, a.batch_size, (long long)a.batch_size * world_, omp_get_max_threads(),
                   dist::local_size());
  }

  RunResult run() {
    restore();
    const auto t0 = Clock::now();
    bool stop = (a_.max_steps > 0 && st_.step >= a_.max_steps);
    for (int epoch = st_.epoch; epoch < end_epoch_ && !stop; ++epoch) stop = !run_epoch(epoch);
    dir_.flush();
    dist::barrier();  // rank 0's last checkpoint is complete before any rank reports success
    res_.state = st_;
    if (root_) finish(seconds_since(t0));
    return res_;
  }

 private:
  // --resume (rank 0 reads, every rank gets its state) or --start_epoch; the records rewound to that position.
  void restore() {
    const std::string resume = resolve_resume(a_);
    if (root_ && !resume.empty()) {
      io::SafeTensorsReader f(resume);
      nlohmann::json ck_args;
      st_ = read_run_state(f, resume, t_.command(), &ck_args);
      t_.load(f, st_.pending_grads);
      std::fprintf(stderr, "resumed %s: epoch %d, batch %lld, step %ld\n", resume.c_str(), st_.epoch,
                   (long long)st_.next_batch, st_.step);
      st_.next_batch = rebase_position(resume, ck_args, st_, int64_t(a_.batch_size) * world_, iters_);
    }
    if (a_.start_epoch >= 0 && resume.empty()) st_.epoch = a_.start_epoch;
    dist::broadcast_value(st_);
    t_.broadcast(st_.pending_grads);
    dir_.rewind(st_.epoch, st_.step);
    last_ck_ = resume;
    step0_ = st_.step;
  }

  // One epoch from st_.next_batch; false when the run stops inside it (signal, --max_steps).
  bool run_epoch(int epoch) {
    t_.start_epoch(epoch, st_.next_batch);
    if (st_.next_batch == 0) {  // optimizer.zero_grad() before the epoch: accumulation starts afresh
      t_.zero_grad();
      st_.loss_sum = st_.lr_sum = st_.interval_loss = 0, st_.loss_n = st_.images = st_.interval_n = 0;
    }
    t_epoch_ = Clock::now(), images0_ = st_.images;
    // A run resumed inside an accumulation window keeps the lr set at the window's first micro-batch.
    const int64_t window0 = st_.next_batch - st_.next_batch % a_.accum_iter;
    float lr = float(lr_at(double(window0) / double(iters_) + epoch, lr_, a_.min_lr, a_.warmup_epochs, a_.epochs));
    for (int64_t i = st_.next_batch; i < iters_; ++i) {
      // per-iteration (not per-epoch) schedule, as lr_sched.adjust_learning_rate
      if (i % a_.accum_iter == 0)
        lr = float(lr_at(double(i) / double(iters_) + epoch, lr_, a_.min_lr, a_.warmup_epochs, a_.epochs));
      // The whole step is enqueued before the host waits for anything (on CUDA the loss comes back behind an event
      // while the optimizer runs): forward, backward, [all-reduce, update,] then the loss.
      t_.forward_backward(epoch, i, 1.0f / float(a_.accum_iter));
      const bool stepped = (i + 1) % a_.accum_iter == 0;
      if (stepped) t_.optimizer_step(lr, ++st_.step);
      // One all-reduce a micro-batch: the loss (mean over the ranks' equal slices), whether any rank got a signal,
      // and rank 0's clock for --save_every_minutes, so every rank stops or saves at the same batch.
      double red[3] = {t_.loss_wait(), preempt::requested() ? 1.0 : 0.0, root_ && stepped && minutes_due() ? 1.0 : 0.0};
      dist::allreduce_sum(red, 3);
      account(epoch, i, red[0] / world_, lr, stepped);
      const bool last = i + 1 == iters_, hit_max = stepped && a_.max_steps > 0 && st_.step >= a_.max_steps;
      if (red[1] > 0 || hit_max) {
        if (!last) return stop_inside(epoch, red[1] > 0);
        end_epoch(epoch);
        res_.preempted = red[1] > 0;
        return false;
      }
      if (stepped && !last && (red[2] > 0 || (a_.save_every_steps > 0 && st_.step % a_.save_every_steps == 0)))
        save_last(epoch, false);
    }
    end_epoch(epoch);
    return true;
  }

  bool minutes_due() const {
    return a_.save_every_minutes > 0 && seconds_since(last_save_) >= 60.0 * a_.save_every_minutes;
  }

  // The sums behind the log rows, metrics.jsonl and TensorBoard, the progress line, and the non-finite-loss stop.
  void account(int epoch, int64_t i, double loss, float lr, bool stepped) {
    if (!std::isfinite(loss)) {
      progress_.done();
      fail("loss is ", loss, " at epoch ", epoch + 1, " batch ", i + 1, " (step ", st_.step, "): stopping", t_.tag(),
           ". The last good checkpoint is ", last_ck_.empty() ? std::string("(none yet)") : last_ck_,
           "; try a lower --blr or more --warmup_epochs");
    }
    if (stepped) st_.grad_norm = t_.grad_norm();
    st_.loss_sum += loss, st_.lr_sum += lr, ++st_.loss_n, st_.images += int64_t(t_.batch_images()) * world_;
    st_.interval_loss += loss, ++st_.interval_n;
    st_.next_batch = i + 1;
    const double epoch_f = epoch + double(i + 1) / double(iters_);
    if (stepped) {  // engine_*.py: log_writer.add_scalar(..., epoch_1000x) at every update
      const int64_t x1000 = int64_t((double(i) / double(iters_) + epoch) * 1000);
      dir_.scalar(t_.loss_tag(), loss, x1000);
      dir_.scalar("lr", lr, x1000);
    }
    if (((i + 1) % (10 * a_.accum_iter) == 0 || i + 1 == iters_) && st_.interval_n > 0) {
      nlohmann::json row = {{"step", st_.step}, {"epoch", epoch}, {"epoch_f", epoch_f},
                            {"loss", st_.interval_loss / double(st_.interval_n)}, {"lr", lr}};
      if (std::isfinite(st_.grad_norm)) row["grad_norm"] = st_.grad_norm;
      dir_.log_metrics(row);
      st_.interval_loss = 0, st_.interval_n = 0;
    }
    if (root_) progress_.update(progress_line(epoch, i, loss, lr), i + 1 == iters_);
  }

  std::string progress_line(int epoch, int64_t i, double loss, float lr) {
    const double el = seconds_since(t_epoch_);
    const double ips = double(st_.images - images0_) / std::max(el, 1e-9);
    const double eta = ++batches_this_run_ > 0 ? seconds_since(t_run_) / double(batches_this_run_) *
                                                     double(remaining_batches(epoch, i))
                                               : NAN;
    char gn[32] = "";
    if (std::isfinite(st_.grad_norm)) std::snprintf(gn, sizeof gn, "  gnorm %.3f", st_.grad_norm);
    char line[320];
    std::snprintf(line, sizeof line, "epoch %d/%d  batch %lld/%lld  step %ld/%ld  loss %.4f  lr %.3e%s  %.1f img/s  "
                  "ETA %s%s", epoch + 1, a_.epochs, (long long)(i + 1), (long long)iters_, st_.step, total_steps_,
                  loss, lr, gn, ips, format_duration(eta).c_str(), t_.tag().c_str());
    return line;
  }
  int64_t remaining_batches(int epoch, int64_t i) const {
    const int64_t by_epochs = int64_t(end_epoch_ - epoch) * iters_ - (i + 1);
    if (a_.max_steps <= 0) return by_epochs;
    return std::min(by_epochs, int64_t(a_.max_steps - st_.step) * a_.accum_iter);
  }

  // Stopped inside an epoch: checkpoint-last at the exact position (gradients too, mid-window).
  bool stop_inside(int epoch, bool signalled) {
    progress_.done();
    save_last(epoch, true);
    res_.preempted = signalled;
    if (root_)
      std::fprintf(stderr, "epoch %d/%d: %s at batch %lld/%lld (step %ld) -> %s\n", epoch + 1, a_.epochs,
                   signalled ? "stopped by a signal" : "--max_steps reached", (long long)st_.next_batch,
                   (long long)iters_, st_.step, dir_.checkpoint("last").c_str());
    return false;
  }

  void save_last(int epoch, bool allow_pending) {
    st_.epoch = epoch;
    st_.pending_grads = allow_pending && st_.next_batch % a_.accum_iter != 0;
    // Gradients of an unfinished update are saved averaged over ranks (every rank continues from that mean, which
    // the next all-reduce leaves unchanged), so any rank count can resume them.
    if (st_.pending_grads && world_ > 1) t_.average_grads();
    if (root_) {
      last_ck_ = dir_.checkpoint("last");
      t_.save(last_ck_, run_metadata(t_.command(), st_, args_), false, st_.pending_grads);
      dir_.draw_curves(t_.command());
      dir_.flush();
    }
    last_save_ = Clock::now();
  }

  // Epoch end (main_*.py): evaluate, checkpoints, the log row, curves, TensorBoard.
  void end_epoch(int epoch) {
    progress_.done();
    const double el = seconds_since(t_epoch_);
    const double train_loss = st_.loss_sum / double(std::max<int64_t>(st_.loss_n, 1));
    nlohmann::json row = {{"train_lr", st_.lr_sum / double(std::max<int64_t>(st_.loss_n, 1))},
                          {"train_loss", train_loss}, {"epoch", epoch}, {"step", st_.step},
                          {"epoch_time_s", el}, {"img_per_s", double(st_.images - images0_) / std::max(el, 1e-9)}};
    row.update(t_.log_extras());
    ++res_.epochs_run;
    res_.last_train_loss = train_loss;
    st_.epoch = epoch + 1, st_.next_batch = 0, st_.pending_grads = false;
    bool best = false;
    if (root_ && t_.evaluates()) best = evaluate(epoch, row);
    if (root_) {
      last_ck_ = dir_.checkpoint("last");
      const auto meta = run_metadata(t_.command(), st_, args_);
      t_.save(last_ck_, meta, false, false);
      if (a_.save_every > 0 && ((epoch + 1) % a_.save_every == 0 || epoch + 1 == a_.epochs))
        t_.save(dir_.checkpoint(std::to_string(epoch)), meta, false, false);
      if (a_.keep_last > 0) prune_checkpoints(dir_.output_dir(), a_.keep_last);
      if (best) t_.save(dir_.checkpoint("best"), meta, true, false);
      dir_.log_epoch(row);
      dir_.draw_curves(t_.command());
      dir_.flush();
      print_epoch(epoch, row, el);
    }
    last_save_ = Clock::now();
  }

  // Rank 0: the test split; the max accuracy; the perf/* scalars. Returns whether this is a new best.
  bool evaluate(int epoch, nlohmann::json& row) {
    const EvalStats ev = t_.evaluate();
    const bool best = ev.acc1 > st_.max_accuracy || !fs::exists(dir_.checkpoint("best"));
    st_.max_accuracy = std::max(st_.max_accuracy, ev.acc1);
    auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
    row["test_loss"] = ev.loss, row["test_acc1"] = ev.acc1, row["test_acc5"] = num(ev.acc5);
    dir_.scalar("perf/test_acc1", ev.acc1, epoch);
    if (std::isfinite(ev.acc5)) dir_.scalar("perf/test_acc5", ev.acc5, epoch);
    dir_.scalar("perf/test_loss", ev.loss, epoch);
    res_.last_eval = ev, res_.evaluated = true;
    return best && t_.keeps_best();
  }

  void print_epoch(int epoch, const nlohmann::json& row, double el) const {
    std::string test;
    if (row.contains("test_acc1")) {
      char b[160];
      std::snprintf(b, sizeof b, " | test loss %.4f  acc@1 %.2f%%", row["test_loss"].get<double>(),
                    row["test_acc1"].get<double>());
      test = b;
      if (row["test_acc5"].is_number())
        std::snprintf(b, sizeof b, "  acc@5 %.2f%%", row["test_acc5"].get<double>()), test += b;
      std::snprintf(b, sizeof b, " | max accuracy %.2f%%", st_.max_accuracy), test += b;
    }
    std::fprintf(stderr, "epoch %d/%d: train loss %.4f  lr %.3e%s | %.1f s, %.1f img/s -> %s%s\n", epoch + 1,
                 a_.epochs, row["train_loss"].get<double>(), row["train_lr"].get<double>(), test.c_str(), el,
                 row["img_per_s"].get<double>(), last_ck_.c_str(), t_.tag().c_str());
  }

  void finish(double secs) {
    if (t_.evaluates() && !res_.evaluated && !res_.preempted) {  // nothing left to run: report the checkpoint's
      res_.last_eval = t_.evaluate();
      res_.evaluated = true;
      st_.max_accuracy = std::max(st_.max_accuracy, res_.last_eval.acc1);
      res_.state.max_accuracy = st_.max_accuracy;
    }
    if (res_.evaluated) {
      std::printf("Accuracy of the network on the %lld test images: %.2f%% (max accuracy %.2f%%)%s\n",
                  (long long)res_.last_eval.n, res_.last_eval.acc1, st_.max_accuracy, t_.tag().c_str());
      std::fflush(stdout);
    }
    std::fprintf(stderr, "%s in %s: %d epoch(s) and %ld steps this run%s; checkpoint %s; log %s\n",
                 res_.preempted ? "stopped (resume with --resume auto)" : "done", format_duration(secs).c_str(),
                 res_.epochs_run, st_.step - step0_,
                 res_.evaluated ? (", max accuracy " + fmt2(st_.max_accuracy) + "%").c_str() : "",
                 last_ck_.empty() ? "(none)" : last_ck_.c_str(), dir_.log_path().c_str());
  }
  static std::string fmt2(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v);
    return b;
  }

  // First member: the signal handlers are in place before anything else of the run (restoring a checkpoint can take
  // a while), so a signal at any moment after the task is built finishes a step and saves instead of killing.
  preempt::Guard guard_;
  const RunArgs& a_;
  TrainTask& t_;
  const int world_;
  const bool root_;
  RunDir dir_;
  const int64_t iters_;
  const int end_epoch_;
  double lr_ = 0;
  long total_steps_ = 0;
  nlohmann::json args_;
  RunState st_;
  RunResult res_;
  Progress progress_;
  std::string last_ck_;
  Clock::time_point t_run_ = Clock::now(), t_epoch_ = Clock::now(), last_save_ = Clock::now();
  int64_t images0_ = 0, batches_this_run_ = 0;
  long step0_ = 0;
};

}  // namespace

RunResult run_training(const RunArgs& a, TrainTask& task) {
  validate(a);
  Engine e(a, task);
  return e.run();
}

}  // namespace mae
