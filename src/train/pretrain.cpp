#include "train/pretrain.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "dist/comm.h"
#include "io/atomic_file.h"
#include "model/mae.h"
#include "ops/backend.h"
#include "train/adamw.h"
#include "train/curve.h"
#include "train/device_mirror.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/train_checkpoint.h"
#ifdef MAE_CUDA
#include "ops/cuda/backend_cuda.h"
#endif

namespace mae {

namespace fs = std::filesystem;

namespace {

// `norm` is what the loader normalised with (measured on the data for IDX): reconstruct/embed read it back as
// args.normalize so they feed the model pixels scaled the way it was trained.
nlohmann::json args_json(const PretrainArgs& a, const Normalization& norm) {
  return {{"normalize", {{"mean", norm.mean}, {"std", norm.std}}},
          {"model", a.model},         {"input_size", a.input_size},       {"in_chans", a.in_chans},
          {"mask_ratio", a.mask_ratio}, {"norm_pix_loss", a.norm_pix_loss}, {"batch_size", a.batch_size},
          {"epochs", a.epochs},       {"accum_iter", a.accum_iter},       {"weight_decay", a.weight_decay},
          {"lr", a.lr},               {"blr", a.blr},                     {"min_lr", a.min_lr},
          {"warmup_epochs", a.warmup_epochs}, {"max_steps", a.max_steps}, {"data_path", a.data_path},
          {"num_workers", a.num_workers}, {"output_dir", a.output_dir},  {"seed", a.seed},
          {"threads", omp_get_max_threads()}, {"world_size", dist::world()},
          {"global_batch", a.batch_size * dist::world()}};
}

void validate(const PretrainArgs& a) {
  if (!(a.mask_ratio > 0 && a.mask_ratio < 1)) fail("--mask_ratio must be in (0, 1), got ", a.mask_ratio);
  if (a.batch_size < 1) fail("--batch_size must be ≥ 1, got ", a.batch_size);
  if (a.epochs < 1) fail("--epochs must be ≥ 1, got ", a.epochs);
  if (a.accum_iter < 1) fail("--accum_iter must be ≥ 1, got ", a.accum_iter);
  if (a.weight_decay < 0) fail("--weight_decay must be ≥ 0");
  if (a.lr < 0 || a.blr <= 0 || a.min_lr < 0) fail("--lr/--min_lr must be ≥ 0 and --blr > 0");
  if (a.warmup_epochs < 0) fail("--warmup_epochs must be ≥ 0");
  if (a.max_steps < 0) fail("--max_steps must be ≥ 0");
  if (a.num_workers < 0) fail("--num_workers must be ≥ 0");
  if (a.save_every < 0) fail("--save_every must be ≥ 0");
}

// Metrics of every `interval` optimizer steps, one JSON line each, kept so the loss curve survives resumes.
struct MetricsLog {
  std::string path;
  std::vector<nlohmann::json> rows;

  // Keeps only rows up to `step` (a killed run may have logged past its last checkpoint).
  void load(long step) {
    rows.clear();
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      try {
        auto j = nlohmann::json::parse(line);
        if (j.value("step", 0L) <= step) rows.push_back(j);
      } catch (...) {
        // a torn last line from a kill: dropped
      }
    }
    save();
  }
  void save() const {
    std::string s;
    for (const auto& r : rows) s += r.dump() + "\n";
    io::write_file_atomic(path, s);
  }
};

void append_line(const std::string& path, const std::string& line) {
  std::ofstream o(path, std::ios::app);
  o << line << "\n";
  o.flush();
  if (!o) fail(path, ": cannot append: ", std::strerror(errno));
}

void draw_curve(const std::string& path, const MetricsLog& m, const std::vector<std::pair<double, double>>& epochs) {
  Series steps{"loss (every log interval)", {}, {}, "#1f77b4", false};
  for (const auto& r : m.rows) {
    steps.x.push_back(r.value("epoch_f", 0.0));
    steps.y.push_back(r.value("loss", NAN));
  }
  Series ep{"epoch mean", {}, {}, "#d62728", true};
  for (auto [e, l] : epochs) ep.x.push_back(e), ep.y.push_back(l);
  write_curve_svg(path, "MAE pretraining loss", "epoch", "loss", {steps, ep});
}

// The checkpoint's position is a micro-batch index in units of its global batch (batch_size × world_size of the run
// that wrote it). Resuming with another global batch (another rank count at the same per-rank batch, say) keeps the
// sample position when it falls on a batch boundary of the new run, and refuses otherwise.
int64_t rebase_position(const std::string& path, const nlohmann::json& ck_args, const TrainState& st, int64_t new_g,
                        int64_t iters) {
  const int64_t old_g = ck_args.is_object() && ck_args.contains("global_batch")
                            ? ck_args["global_batch"].get<int64_t>()
                            : (ck_args.is_object() ? ck_args.value("batch_size", new_g) : new_g);
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

void print_world(int batch_size) {
  std::fprintf(stderr, "data parallel: %d ranks × batch %d (global batch %d), %d threads per rank, "
               "%d ranks on this node\n", dist::world(), batch_size, batch_size * dist::world(),
               omp_get_max_threads(), dist::local_size());
  if (omp_get_max_threads() > dist::affinity_cpus())
    std::fprintf(stderr, "warning: %d threads per rank but rank 0 may run on %d CPU(s) only: mpirun binds ranks to "
                 "cores by default; pass --bind-to none (or --map-by ...:PE=N)\n", omp_get_max_threads(),
                 dist::affinity_cpus());
}

double grad_norm(const float* g, size_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (size_t i = 0; i < n; ++i) s += double(g[i]) * g[i];
  return std::sqrt(s);
}

}  // namespace

// The gradient average over ranks. A CUDA build with NCCL all-reduces the device buffer on the compute stream;
// otherwise MPI over host memory (the mirror downloads and uploads when the model is on a device).
template <class Bk> void average_grads(MaeModel<Bk>& model, TrainMirror<Bk>& mirror, size_t np) {
#if defined(MAE_CUDA) && defined(MAE_NCCL)
  if constexpr (!std::is_base_of_v<HostMemory, Bk>) {
    static dist::NcclComm* comm = dist::nccl_init(0);  // collective: every rank reaches its first step together
    dist::nccl_allreduce_mean(comm, model.grads_data(), np, cuda::stream_handle());
    return;
  }
#endif
  (void)model;
  mirror.on_host_grads([&](float* g) { dist::allreduce_mean(g, np); });
}

// The loop on one backend: CpuBackend, or CudaBackend with --device cuda (the model's buffers on the GPU; the
// TrainMirror keeps host copies for checkpoints, broadcasts and all-reduces).
template <class Bk> double pretrain_on(const PretrainArgs& a) {
  validate(a);
  // Data parallel (dist/comm.h): rank r of `world` trains on its slice of every global batch of a.batch_size × world
  // samples; rank 0 alone writes the output folder (logs, metrics, checkpoints) and prints.
  const int world = dist::world();
  const bool root = dist::is_root();
  const std::string log_dir = a.log_dir.empty() ? a.output_dir : a.log_dir;
  std::error_code ec;
  if (root) {
    fs::create_directories(a.output_dir, ec);
    if (ec) fail("--output_dir ", a.output_dir, ": cannot create: ", ec.message());
    fs::create_directories(log_dir, ec);
    if (ec) fail("--log_dir ", log_dir, ": cannot create: ", ec.message());
    // fail now, not after an epoch, if the folder is not writable
    const std::string probe = (fs::path(a.output_dir) / ".write_test").string();
    io::write_file_atomic(probe, std::string("ok"));
    fs::remove(probe, ec);
  }

  // ---- data ----
  auto ds = open_dataset(a.data_path, "train");
  ModelConfig cfg = preset(a.model);
  if (a.input_size > 0) cfg.img_size = a.input_size;
  cfg.in_chans = a.in_chans > 0 ? a.in_chans : ds->channels();
  cfg.norm_pix_loss = a.norm_pix_loss;
  cfg.validate("--model " + a.model + " with --input_size " + std::to_string(cfg.img_size));
  LoaderConfig lc;
  lc.batch_size = a.batch_size;
  lc.seed = a.seed;
  lc.num_workers = a.num_workers;
  lc.rank = dist::rank();
  lc.world = world;
  lc.transform.size = cfg.img_size;
  lc.transform.channels = cfg.in_chans;
  lc.transform.train = true;  // RandomResizedCrop(scale 0.2–1, bicubic) + horizontal flip
  lc.transform.norm = normalization_for_channels(ds->normalization(), cfg.in_chans);
  if (int64_t(ds->size()) < int64_t(a.batch_size) * world)
    fail(ds->description(), ": ", ds->size(), " images is fewer than one batch of ", a.batch_size,
         world > 1 ? " × " + std::to_string(world) + " ranks" : std::string());
  Loader loader(*ds, lc);
  const int64_t iters = loader.batches_per_epoch();

  const int eff_batch = a.batch_size * a.accum_iter * world;  // main_pretrain.py: × misc.get_world_size()
  const double lr = a.lr > 0 ? a.lr : a.blr * eff_batch / 256.0;

  // ---- model and optimizer state ----
  MaeModel<Bk> model(cfg, a.batch_size, a.mask_ratio);
  const ParamList& pl = model.params();
  const size_t np = pl.total;
  TrainMirror<Bk> mirror(model);  // AdamW moments; host views of the state when the model is on a device
  TrainBuffers buf = mirror.host_buffers();
  model.init(Rng::derive(a.seed, stream::init));
  model.zero_grad();
  mirror.to_host(false);
  TrainState st;
  std::string resume = a.resume;
  if (root) {  // rank 0 reads the checkpoint; the others get its contents by broadcast below
    if (resume == "auto") {
      resume = find_latest_checkpoint(a.output_dir);
      if (resume.empty()) std::fprintf(stderr, "resume auto: no checkpoint in %s, starting fresh\n", a.output_dir.c_str());
    }
    if (!resume.empty()) {
      nlohmann::json ck_args;
      st = load_train_checkpoint(resume, cfg, pl, buf, &ck_args);
      std::fprintf(stderr, "resumed %s: epoch %d, batch %lld, step %ld\n", resume.c_str(), st.epoch,
                   (long long)st.next_batch, st.step);
      st.next_batch = rebase_position(resume, ck_args, st, int64_t(a.batch_size) * world, iters);
    }
  }
  dist::broadcast(resume);
  if (a.start_epoch >= 0 && resume.empty()) st.epoch = a.start_epoch;
  // Every rank starts from rank 0's parameters and optimizer state (and accumulated gradients, mid-update).
  dist::broadcast_value(st);
  dist::broadcast(buf.params, np * sizeof(float));
  dist::broadcast(buf.m, np * sizeof(float));
  dist::broadcast(buf.v, np * sizeof(float));
  if (st.pending_grads) dist::broadcast(buf.grads, np * sizeof(float));
  mirror.to_device(st.pending_grads);

  const std::string ck_last = (fs::path(a.output_dir) / "checkpoint-last.safetensors").string();
  MetricsLog metrics{(fs::path(log_dir) / "metrics.jsonl").string(), {}};
  if (root) metrics.load(st.step);
  const std::string log_txt = (fs::path(log_dir) / "log.txt").string();
  const std::string curve_svg = (fs::path(log_dir) / "loss_curve.svg").string();
  std::vector<std::pair<double, double>> epoch_means;
  if (root && fs::exists(log_txt)) {  // keep the epochs the checkpoint has seen (a killed run may have logged one more)
    std::ifstream in(log_txt);
    std::string line, kept;
    while (std::getline(in, line)) try {
        auto j = nlohmann::json::parse(line);
        if (j.value("epoch", 1 << 30) < st.epoch) {
          epoch_means.push_back({j["epoch"].get<int>() + 1.0, j["train_loss"].get<double>()});
          kept += line + "\n";
        }
      } catch (...) {
      }
    io::write_file_atomic(log_txt, kept);
  }

  const nlohmann::json args = args_json(a, lc.transform.norm);
  if (root) {
    std::fprintf(stderr, "data: %s\n", ds->description().c_str());
    std::fprintf(stderr, "normalize: mean %s std %s\n", nlohmann::json(lc.transform.norm.mean).dump().c_str(),
                 nlohmann::json(lc.transform.norm.std).dump().c_str());
    std::fprintf(stderr, "model: %s %s\n", a.model.c_str(), config_to_json(cfg).dump().c_str());
    std::fprintf(stderr, "base lr: %.3e  actual lr: %.3e  effective batch: %d  accum_iter: %d  threads: %d  workers: %d\n",
                 a.blr, lr, eff_batch, a.accum_iter, omp_get_max_threads(), a.num_workers);
    if (world > 1) print_world(a.batch_size);
  }

  const int L = cfg.num_patches();
  std::vector<float> noise(size_t(a.batch_size) * L);
  const uint64_t mask_key = Rng::derive(a.seed, stream::mask);
  AdamWConfig oc;
  oc.weight_decay = float(a.weight_decay);
  const long total_steps = a.max_steps > 0 ? a.max_steps : long(a.epochs) * iters / a.accum_iter;
  Progress progress(a.print_every_s);
  const auto t_run = std::chrono::steady_clock::now();
  long steps_this_run = 0;
  double last_epoch_loss = NAN;
  bool stop = a.max_steps > 0 && st.step >= a.max_steps;

  for (int epoch = st.epoch; epoch < a.epochs && !stop; ++epoch) {
    loader.start_epoch(epoch, st.next_batch);
    double loss_sum = 0, lr_sum = 0, gn = 0;
    long loss_n = 0, interval_n = 0;
    double interval_loss = 0;
    float cur_lr = float(lr_at(double(st.next_batch) / iters + epoch, lr, a.min_lr, a.warmup_epochs, a.epochs));
    const auto t_epoch = std::chrono::steady_clock::now();
    int64_t imgs_epoch = 0;
    for (int64_t i = st.next_batch; i < iters; ++i) {
      const Batch* b = loader.next();
      if (!b) break;
      // per-iteration (not per-epoch) lr schedule, as lr_sched.adjust_learning_rate
      if (i % a.accum_iter == 0)
        cur_lr = float(lr_at(double(i) / iters + epoch, lr, a.min_lr, a.warmup_epochs, a.epochs));
      // Masking noise of a sample depends on (seed, epoch, dataset index) only: reproducible on resume and
      // identical whatever the number of processes.
      for (int s = 0; s < b->size; ++s) {
        Rng r = Rng::keyed(mask_key, uint64_t(epoch), uint64_t(b->indices[s]));
        for (int l = 0; l < L; ++l) noise[size_t(s) * L + l] = r.uniform_f();
      }
      // The whole step is enqueued before the host waits for anything (on CUDA the loss and the gradient norm come
      // back behind events while the optimizer runs): forward, backward, [all-reduce,] AdamW, then the loss.
      if (a.cuda_graph) {
        model.forward_backward_graph(mirror.images(b->images), noise.data(), 1.0f / float(a.accum_iter));
      } else {
        model.forward_nowait(mirror.images(b->images), noise.data());
        model.backward(1.0f / float(a.accum_iter));  // loss /= accum_iter
      }
      const bool stepped = (i + 1) % a.accum_iter == 0;
      if (stepped) {
        // One blocking all-reduce over the flat gradient buffer after backward (no bucketing, no overlap): each rank
        // holds ∂(mean loss of its slice)/∂θ, their mean is ∂(mean loss of the global batch)/∂θ.
        if (world > 1) average_grads(model, mirror, np);
        mirror.grad_norm_start(grad_norm);
        adamw_step<Bk>(pl, model.params_data(), mirror.m(), mirror.v(), model.grads_data(), cur_lr, oc, st.step + 1);
        model.zero_grad();
        ++st.step;
        ++steps_this_run;
      }
      // The loss logged (and checked) is the global batch's: the mean of the ranks' equal-sized slices. A non-finite
      // loss stops the run before anything is saved: the update it fed is never checkpointed.
      double loss_d = model.loss_wait();
      dist::allreduce_sum(&loss_d, 1);
      const float loss = float(loss_d / world);
      if (stepped) gn = mirror.grad_norm_wait();
      if (!std::isfinite(loss)) {
        progress.done();
        fail("loss is ", loss, " at epoch ", epoch + 1, " batch ", i + 1, " (step ", st.step + (stepped ? 0 : 1),
             "): stopping. The last good checkpoint is ", fs::exists(ck_last) ? ck_last : std::string("(none yet)"),
             "; try a lower --blr or more --warmup_epochs");
      }
      imgs_epoch += int64_t(b->size) * world;  // drop_last: every rank has a full slice
      loss_sum += loss, lr_sum += cur_lr, ++loss_n;
      interval_loss += loss, ++interval_n;
      st.next_batch = i + 1;
      const bool hit_max = a.max_steps > 0 && st.step >= a.max_steps && (i + 1) % a.accum_iter == 0;

      // metrics every 10 optimizer steps (and at the end of the epoch)
      if (root && ((i + 1) % (10 * a.accum_iter) == 0 || i + 1 == iters || hit_max) && interval_n > 0) {
        metrics.rows.push_back({{"step", st.step},
                                {"epoch", epoch},
                                {"epoch_f", epoch + double(i + 1) / iters},
                                {"loss", interval_loss / interval_n},
                                {"lr", cur_lr},
                                {"grad_norm", gn}});
        append_line(metrics.path, metrics.rows.back().dump());
        interval_loss = 0, interval_n = 0;
      }
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
      const double ips = imgs_epoch / std::max(el, 1e-9);
      const double el_run = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_run).count();
      const double eta = steps_this_run > 0 ? el_run / steps_this_run * double(total_steps - st.step) : NAN;
      char line[256];
      std::snprintf(line, sizeof line, "epoch %d/%d  batch %lld/%lld  step %ld/%ld  loss %.4f  lr %.3e  gnorm %.3f  %.1f img/s  ETA %s",
                    epoch + 1, a.epochs, (long long)(i + 1), (long long)iters, st.step, total_steps, loss, cur_lr, gn,
                    ips, format_duration(eta).c_str());
      if (root) progress.update(line, i + 1 == iters);
      if (hit_max) {
        stop = true;
        break;
      }
    }
    progress.done();
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    const bool epoch_done = st.next_batch >= iters;
    st.pending_grads = (st.next_batch % a.accum_iter) != 0;
    // Gradients of an unfinished update are saved averaged over ranks (and every rank continues from that mean,
    // which the next all-reduce leaves unchanged): so any rank count can resume them.
    if (st.pending_grads && world > 1) average_grads(model, mirror, np);
    if (epoch_done) {
      last_epoch_loss = loss_sum / std::max<long>(loss_n, 1);
      // log_stats = {'train_loss', 'train_lr', 'epoch', ...} — one JSON object per line, as the official log.txt
      nlohmann::json row = {{"train_loss", last_epoch_loss},
                            {"train_lr", lr_sum / std::max<long>(loss_n, 1)},
                            {"epoch", epoch},
                            {"step", st.step},
                            {"epoch_time_s", el},
                            {"img_per_s", imgs_epoch / std::max(el, 1e-9)}};
      if (root) append_line(log_txt, row.dump());
      epoch_means.push_back({epoch + 1.0, last_epoch_loss});
      st.epoch = epoch + 1;
      st.next_batch = 0;
    } else {
      st.epoch = epoch;
    }
    if (!root) continue;
    mirror.to_host(st.pending_grads);
    save_train_checkpoint(ck_last, cfg, pl, buf, st, args);
    if (epoch_done && a.save_every > 0 && ((epoch + 1) % a.save_every == 0 || epoch + 1 == a.epochs))
      save_train_checkpoint((fs::path(a.output_dir) / ("checkpoint-" + std::to_string(epoch) + ".safetensors")).string(),
                            cfg, pl, buf, st, args);
    draw_curve(curve_svg, metrics, epoch_means);
    std::fprintf(stderr, "epoch %d: loss %.4f, %.1f s, %.1f img/s -> %s\n", epoch + 1,
                 epoch_done ? last_epoch_loss : loss_sum / std::max<long>(loss_n, 1), el,
                 imgs_epoch / std::max(el, 1e-9), ck_last.c_str());
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_run).count();
  // Rank 0's last checkpoint is complete before any rank reports success.
  dist::barrier();
  if (root)
    std::fprintf(stderr, "done: %ld steps this run in %s; checkpoint %s, log %s, curve %s\n", steps_this_run,
               format_duration(total).c_str(), ck_last.c_str(), log_txt.c_str(), curve_svg.c_str());
  return last_epoch_loss;
}

double run_pretrain(const PretrainArgs& a) {
  if (a.device == "cuda") {
#ifdef MAE_CUDA
    if (cuda::device_count() == 0) cuda::require_device();  // throws "no CUDA device found (...)"
    return pretrain_on<CudaBackend<float>>(a);
#else
    fail("--device cuda: this mae was built without CUDA (reconfigure with -DMAE_CUDA=ON on a machine with nvcc)");
#endif
  }
  if (a.device != "cpu") fail("--device must be cpu or cuda, got '", a.device, "'");
  return pretrain_on<CpuBackend<float>>(a);
}

}  // namespace mae
