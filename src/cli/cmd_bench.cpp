// mae bench: training-step (forward + backward + AdamW) and forward-only throughput of a model config; with
// --features, the encoder on all tokens as the evaluation commands run it instead; with --loader, the input pipeline
// alone (cli/bench_loader.h).
// Timings live here and in bench/, never in tests.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/bench_loader.h"
#include "cli/common.h"
#include "cli/device.h"
#include "cli/gemm_limit.h"
#include "core/error.h"
#include "core/limits.h"
#include "io/safetensors.h"
#include "eval/frozen_encoder.h"
#include "model/mae.h"
#include "train/step_graph.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "ops/cpu/host_info.h"
#include "ops/cpu/precision.h"
#include "ops/cpu/row_tiles.h"
#include "train/adamw.h"
#include "ops/dispatch.h"

namespace mae::cli {
namespace {

struct BenchArgs {
  std::string model = "mae_vit_fmnist", checkpoint, device = "cpu", precision = "fp32", row_tiles = "on";
  std::string inference_gemm;  // --features on the CPU at fp32: onednn, openblas or ab ("": as built)
  int batch_size = 64, threads = 0, steps = 5, warmup = 1;
  double mask_ratio = 0.75;
  bool norm_pix_loss = true, json = false, profile = false, cuda_graph = false, gemm_limit = false, features = false;
};

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

template <class F> double seconds(F&& f, int i) {  // wall time of f(i)
  const auto t0 = std::chrono::steady_clock::now();
  f(i);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Median seconds of `steps` calls after `warmup` untimed ones.
template <class F> double time_median(int warmup, int steps, F&& f) {
  for (int i = 0; i < warmup; ++i) f(i);
  std::vector<double> t;
  for (int i = 0; i < steps; ++i) t.push_back(seconds(f, warmup + i));
  return median(t);
}

// Medians of f's and g's seconds over `steps` pairs of calls alternating f, g after `warmup` untimed pairs, so a
// drifting machine slows both alike. The calls get their index: f even, g odd.
template <class F, class G> std::pair<double, double> time_median_alternating(int warmup, int steps, F&& f, G&& g) {
  std::vector<double> tf, tg;
  for (int i = 0; i < warmup + steps; ++i) {
    const double a = seconds(f, 2 * i), b = seconds(g, 2 * i + 1);
    if (i >= warmup) tf.push_back(a), tg.push_back(b);
  }
  return {median(tf), median(tg)};
}

// --row_tiles ab: the steps alternate between the row-tiled CPU blocks and the untiled ones (ops/cpu/row_tiles.h);
// the medians of each, tiled first.
template <class F> std::pair<double, double> time_median_ab(int warmup, int steps, F&& f) {
  const auto r = time_median_alternating(
      warmup, steps, [&](int i) { cpu::set_row_tiles(true), f(i); }, [&](int i) { cpu::set_row_tiles(false), f(i); });
  cpu::set_row_tiles(true);
  return r;
}

// Waits for queued device work (timings must cover it); nothing on host backends.
template <class Bk> void sync() { Bk::synchronize(); }

// Time per op over k more calls of `step` with the backend's profiler on (events around each op on the GPU, wall
// time on the CPU): its rows, per call.
template <class Bk, class F> nlohmann::json profile_ops(F&& step, int first) {
  const int k = 3;
  nlohmann::json rows = nlohmann::json::array();
  Bk::profile_report();  // nothing from before
  Bk::set_profiling(true);
  for (int i = 0; i < k; ++i) step(first + i);
  Bk::set_profiling(false);
  for (const auto& t : Bk::profile_report())
    rows.push_back({{"op", t.op}, {"ms_per_step", t.ms / k}, {"calls_per_step", double(t.calls) / k}});
  return rows;
}

// The profile as a markdown table; `what` is the unit (a training step, a batch), `rest` what the CPU's sum leaves
// out.
template <class Bk> void print_profile(const nlohmann::json& rows, const char* what, double call_s, const char* rest) {
  const bool cpu = std::string(Bk::name) == "cpu";
  double total = 0;
  for (const auto& t : rows) total += t["ms_per_step"].get<double>();
  std::printf("\n%s per op (ms per %s; %s; sum %.3f ms of a %.3f ms %s, the rest is %s):\n", cpu ? "Time" : "GPU time",
              what, cpu ? "wall time around each op" : "events around each op", total, call_s * 1e3, what,
              cpu ? rest : "the GPU waiting for the host");
  std::printf("| op | calls/%s | ms/%s | share |\n|---|---:|---:|---:|\n", what, what);
  for (const auto& t : rows)
    std::printf("| %s | %.0f | %.3f | %.1f%% |\n", t["op"].get<std::string>().c_str(), t["calls_per_step"].get<double>(),
                t["ms_per_step"].get<double>(), 100 * t["ms_per_step"].get<double>() / std::max(total, 1e-12));
}

std::vector<float> random_images(const ModelConfig& cfg, int B) {
  std::mt19937_64 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> imgs(size_t(B) * cfg.in_chans * cfg.img_size * cfg.img_size);
  for (auto& x : imgs) x = nd(rng);
  return imgs;
}

// --features: the encoder on all tokens, no decoder, exactly as embed, knn and linprobe take features: a
// FrozenEncoder (the checkpoint's weights, or the preset's official initialisation) encoding a batch of host images
// into cls features. On the CPU at fp32, --inference_gemm ab alternates oneDNN and OpenBLAS batches
// (ops/cpu/precision.h: inference_onednn).
template <class Bk> void run_features_on(const BenchArgs& a, const DeviceSpec& spec) {
  const bool file = !a.checkpoint.empty();
  FrozenEncoder enc({file ? a.checkpoint : "", file ? "" : a.model, !file, 0, spec}, a.batch_size);
  const ModelConfig& cfg = enc.config();
  const int B = a.batch_size, L = cfg.num_patches();
  const std::string name = file ? a.checkpoint : a.model;
  const std::vector<float> imgs = random_images(cfg, B);
  std::vector<float> feats(size_t(B) * enc.dim());
  if (!a.json)
    std::printf("bench %s on %s (%s): the encoder on all %d tokens, batch %d, threads %d, %zu params\n", name.c_str(),
                Bk::name, a.precision.c_str(), 1 + L, B, current_threads(), enc.model().params().total);
  auto step = [&](int) { enc.encode(imgs.data(), B, /*global_pool=*/false, feats.data()); };
  const bool ab = a.row_tiles == "ab", gemm_ab = a.inference_gemm == "ab";
  cpu::set_row_tiles(a.row_tiles != "off");
  double s = 0, other_s = 0;  // other: untiled (--row_tiles ab) or OpenBLAS (--inference_gemm ab)
  if (ab) {
    std::tie(s, other_s) = time_median_ab(a.warmup, a.steps, step);
  } else if (gemm_ab) {  // oneDNN first, OpenBLAS second
    std::tie(s, other_s) = time_median_alternating(
        a.warmup, a.steps, [&](int i) { cpu::set_inference_onednn(true), step(i); },
        [&](int i) { cpu::set_inference_onednn(false), step(i); });
    cpu::set_inference_onednn(true);
  } else {
    s = time_median(a.warmup, a.steps, step);
  }
  const nlohmann::json prof = a.profile ? profile_ops<Bk>(step, a.warmup + a.steps) : nlohmann::json::array();
  const double flops = encoder_flops(cfg, B, L);
  const std::string gemm = !std::is_base_of_v<HostMemory, Bk> ? "cuBLAS/cuBLASLt"
                           : a.precision == "bf16"           ? "oneDNN bf16"
                           : gemm_ab                         ? "oneDNN f32 / OpenBLAS, alternating"
                           : cpu::inference_onednn_enabled() ? "oneDNN f32"
                                                             : "OpenBLAS";
  const std::string host = cpu::host_info().line();
  if (a.json) {
    nlohmann::json r = {{"impl", "mae"},
                        {"model", name},
                        {"batch", B},
                        {"threads", current_threads()},
                        {"tokens", 1 + L},
                        {"features_img_s", B / s},
                        {"features_gflops", flops / s * 1e-9},
                        {"gemm", gemm},
                        {"device", Bk::name},
                        {"precision", a.precision},
                        {"host", host},
                        {"row_tiles", a.row_tiles},
                        {"peak_rss_mib", peak_rss_mib()}};
    if (ab) r["features_img_s_untiled"] = B / other_s;
    if (gemm_ab) r["features_img_s_openblas"] = B / other_s;
    if (a.profile) r["profile"] = prof;
    std::printf("%s\n", r.dump().c_str());
    return;
  }
  std::printf("host:       %s\n", host.c_str());
  std::printf("features:   %8.2f img/s  (%.3f s/batch, %.1f GFLOP/s; GEMMs: %s)\n", B / s, s, flops / s * 1e-9,
              gemm.c_str());
  if (ab) std::printf("untiled:    %8.2f img/s  (batches alternating with the row-tiled ones above)\n", B / other_s);
  if (gemm_ab)
    std::printf("OpenBLAS:   %8.2f img/s  (batches alternating with the oneDNN ones above: %.2fx)\n", B / other_s,
                other_s / s);
  std::printf("peak RSS:   %8.1f MiB\n", peak_rss_mib());
  if (a.profile) print_profile<Bk>(prof, "batch", s, "outside the ops: the copies in and out");
}

template <class Bk> void run_bench_on(const BenchArgs& a, const DeviceSpec& spec) {
  limits::check_batch_size(a.batch_size);
  if (a.steps < 1 || a.warmup < 0) fail("--steps must be ≥ 1 and --warmup ≥ 0");
  if (a.features) return run_features_on<Bk>(a, spec);
  ModelConfig cfg;
  std::string name = a.model;
  std::unique_ptr<io::SafeTensorsReader> ck;
  if (!a.checkpoint.empty()) {
    ck = std::make_unique<io::SafeTensorsReader>(a.checkpoint);
    cfg = read_config(*ck);
    name = a.checkpoint;
  } else {
    cfg = preset(a.model);
  }
  cfg.norm_pix_loss = a.norm_pix_loss;
  const int B = a.batch_size, L = cfg.num_patches();

  MaeModel<Bk> m(cfg, B, a.mask_ratio);
  const size_t np = m.params().total;
  if (ck) {
    std::vector<float> host(np, 0.0f);
    load_params(*ck, m.params(), host.data());
    Bk::upload(m.params_data(), host.data(), np);
  } else {
    m.init(0);
  }
  float* mom = Bk::template alloc<float>(np);
  float* var = Bk::template alloc<float>(np);

  const std::vector<float> imgs = random_images(cfg, B);
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<float> ud;
  float* dimgs = Bk::template alloc<float>(imgs.size());  // the batch in the backend's memory
  Bk::upload(dimgs, imgs.data(), imgs.size());
  const int nnoise = 4;  // a few masks so every step is not the same
  std::vector<float> noise(size_t(nnoise) * B * L);
  for (auto& x : noise) x = ud(rng);

  if (!a.json)
    std::printf("bench %s on %s (%s): batch %d, threads %d, mask %.2f, norm_pix %d, %zu params, activations %.1f MiB\n",
                name.c_str(), Bk::name, a.precision.c_str(), B, current_threads(), a.mask_ratio,
                int(cfg.norm_pix_loss), np, m.activation_elements() * 4.0 / (1 << 20));
  long t = 0;
  GraphedStep<Bk> graph(m);
  auto train_step = [&](int i) {
    m.zero_grad();
    const float* nz = noise.data() + size_t(i % nnoise) * B * L;
    if (a.cuda_graph) {
      graph.run(dimgs, nz, 1.0f);
    } else {
      m.forward_nowait(dimgs, nz);  // as the training loop: no wait inside the step
      m.backward();
    }
    adamw_step<Bk>(m.params(), m.params_data(), mom, var, m.grads_data(), 1e-4f, AdamWConfig{}, ++t);
    m.loss_wait();
    sync<Bk>();
  };
  auto fwd_step = [&](int i) {
    m.forward(dimgs, noise.data() + size_t(i % nnoise) * B * L);
    sync<Bk>();
  };
  const bool ab = a.row_tiles == "ab";
  cpu::set_row_tiles(a.row_tiles != "off");
  double train_s, fwd_s, train_untiled_s = 0, fwd_untiled_s = 0, limit_s = 0, limit_flops = 0;
  if (ab) {
    std::tie(train_s, train_untiled_s) = time_median_ab(a.warmup, a.steps, train_step);
    std::tie(fwd_s, fwd_untiled_s) = time_median_ab(a.warmup, a.steps, fwd_step);
  } else if (a.gemm_limit) {  // a round of the step's GEMMs after each step (cli/gemm_limit.h)
    const GemmLimit limit(mae_step_gemms(cfg, B, m.len_keep()));
    std::vector<double> rounds;
    train_s = time_median_alternating(a.warmup, a.steps, train_step, [&](int) { rounds.push_back(limit.run()); })
                  .first;
    limit_s = median(std::vector<double>(rounds.end() - a.steps, rounds.end()));
    limit_flops = limit.flops();
    fwd_s = time_median(a.warmup, a.steps, fwd_step);
  } else {
    train_s = time_median(a.warmup, a.steps, train_step);
    fwd_s = time_median(a.warmup, a.steps, fwd_step);
  }
  const double peak_dev_mib = double(Bk::peak_allocated_bytes()) / (1 << 20);
  // The host of the figures (CPU model, vector extensions, GEMM kernels), so timings from different machines are
  // never mixed up.
  const cpu::HostInfo& host = cpu::host_info();
  std::string blas = a.precision == "bf16"
                         ? "oneDNN bf16 matmul (linear; attention forward from 64 tokens), OpenBLAS core " +
                               host.openblas_core
                         : "OpenBLAS (OpenMP build), core " + host.openblas_core;
  if constexpr (!std::is_base_of_v<HostMemory, Bk>) blas = "cuBLAS/cuBLASLt on " + Bk::device_name();
  // Time per op over a few more training steps.
  const nlohmann::json prof =
      a.profile ? profile_ops<Bk>(train_step, a.warmup + a.steps) : nlohmann::json::array();
  const double flops = m.forward_flops();
  nlohmann::json r = {{"impl", "mae"},
                      {"model", name},
                      {"batch", B},
                      {"threads", current_threads()},
                      {"train_img_s", B / train_s},
                      {"fwd_img_s", B / fwd_s},
                      {"train_gflops", 3 * flops / train_s * 1e-9},
                      {"fwd_gflops", flops / fwd_s * 1e-9},
                      {"peak_rss_mib", peak_rss_mib()},
                      {"device", Bk::name},
                      {"precision", a.precision},
                      {"peak_device_mib", peak_dev_mib},
                      {"blas", blas},
                      {"host", host.line()},
                      {"cuda_graph", a.cuda_graph},
                      {"row_tiles", a.row_tiles}};
  if (ab) r["train_img_s_untiled"] = B / train_untiled_s, r["fwd_img_s_untiled"] = B / fwd_untiled_s;
  if (a.gemm_limit)
    r["gemm_limit_s"] = limit_s, r["gemm_limit_flops"] = limit_flops,
    r["gemm_limit_gflops"] = limit_flops / limit_s * 1e-9, r["gemm_share"] = limit_s / train_s;
  if (a.profile) r["profile"] = prof;
  if (a.json) {
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::printf("host:       %s\n", host.line().c_str());
    std::printf("train step: %8.2f img/s  (%.3f s/step, %.1f GFLOP/s)\n", B / train_s, train_s,
                3 * flops / train_s * 1e-9);
    std::printf("forward:    %8.2f img/s  (%.3f s/batch, %.1f GFLOP/s)\n", B / fwd_s, fwd_s, flops / fwd_s * 1e-9);
    if (ab)
      std::printf("untiled:    train %.2f img/s, forward %.2f img/s (steps alternating with the row-tiled ones above)\n",
                  B / train_untiled_s, B / fwd_untiled_s);
    if (a.gemm_limit)
      std::printf("GEMM limit: %.3f s/step (the step's linear-layer GEMMs alone, %.1f GFLOP/s, rounds alternating "
                  "with the steps): the step is at %.1f %% of it\n",
                  limit_s, limit_flops / limit_s * 1e-9, 100 * limit_s / train_s);
    std::printf("peak RSS:   %8.1f MiB\n", peak_rss_mib());
    if (peak_dev_mib > 0) std::printf("peak device memory (params, activations, optimizer): %.1f MiB\n", peak_dev_mib);
    if (a.profile) print_profile<Bk>(prof, "step", train_s, "outside the ops: AdamW bookkeeping, masking");
  }
  Bk::release(mom);
  Bk::release(var);
  Bk::release(dimgs);
}

void run_bench(const BenchArgs& a) {
  set_threads(a.threads);
  check_cuda_graph(a.cuda_graph, a.device);
  if (a.profile && a.cuda_graph) fail("--profile times ops one by one: it cannot see inside --cuda_graph");
  if (a.gemm_limit && (a.device != "cpu" || a.precision != "fp32" || a.row_tiles == "ab" || a.cuda_graph))
    fail("--gemm_limit times the step's fp32 OpenBLAS GEMMs: it needs --device cpu, --precision fp32 and no "
         "--row_tiles ab");
  if (a.row_tiles != "on" && a.device != "cpu")
    fail("--row_tiles ", a.row_tiles, ": row tiles are the CPU backend's (--device ", a.device, ")");
  if (a.features && (a.gemm_limit || a.cuda_graph))
    fail("--features times the inference forward: --gemm_limit and --cuda_graph are the training step's");
  if (!a.inference_gemm.empty() && (!a.features || a.device != "cpu" || a.precision != "fp32" || a.row_tiles == "ab"))
    fail("--inference_gemm ", a.inference_gemm, " chooses the GEMMs of the CPU's fp32 inference forward: it needs "
         "--features, --device cpu, --precision fp32 and no --row_tiles ab");
  if (a.inference_gemm == "onednn" || a.inference_gemm == "ab") cpu::set_inference_onednn(true);  // fails without
  if (a.inference_gemm == "openblas") cpu::set_inference_onednn(false);
  const DeviceSpec spec = select_device(a.device, a.precision);
  with_backend(spec, [&]<class Bk>() { run_bench_on<Bk>(a, spec); });
}

}  // namespace

void add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto l = std::make_shared<LoaderBenchArgs>();
  auto loader = std::make_shared<bool>(false);
  auto* c = app.add_subcommand("bench", "Training-step and forward throughput of a model config, or (--loader) of "
                                        "the input pipeline");
  c->add_option("--model", a->model, "Preset name")->capture_default_str();
  c->add_option("--checkpoint", a->checkpoint, "Take the config (and weights) from this checkpoint instead");
  c->add_option("--batch_size,--batch-size", a->batch_size, "Batch size")->capture_default_str();
  c->add_option("--threads", a->threads, "Threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  c->add_option("--mask_ratio,--mask-ratio", a->mask_ratio, "Masking ratio")->capture_default_str();
  c->add_option("--norm_pix_loss,--norm-pix-loss", a->norm_pix_loss, "Normalised-pixel target (true/false)")
      ->capture_default_str();
  c->add_option("--steps", a->steps, "Timed steps (median reported)")->capture_default_str();
  c->add_option("--warmup", a->warmup, "Untimed warm-up steps")->capture_default_str();
  c->add_flag("--json", a->json, "Print one JSON line");
  c->add_flag("--profile", a->profile,
              "Time per op over 3 more training steps or --features batches (GPU: events around each op; CPU: wall "
              "time, blocks untiled)");
  c->add_option("--row_tiles,--row-tiles", a->row_tiles,
                "CPU: the blocks (forward and backward) in row tiles (on), not (off), or steps alternating between the "
                "two (ab)")
      ->check(CLI::IsMember({"on", "off", "ab"}))
      ->capture_default_str();
  c->add_flag("--features", a->features,
              "Time the encoder on all tokens instead, no decoder (what embed, knn and linprobe run for "
              "features): the FrozenEncoder they use, host images in, cls features out; --profile, "
              "--row_tiles ab apply to it");
  c->add_option("--inference_gemm,--inference-gemm", a->inference_gemm,
                "With --features on the CPU at fp32: the inference forward's GEMMs on oneDNN (the default in builds "
                "with oneDNN), on OpenBLAS (as training), or batches alternating between the two (ab)")
      ->check(CLI::IsMember({"onednn", "openblas", "ab"}));
  c->add_flag("--gemm_limit,--gemm-limit", a->gemm_limit,
              "CPU fp32: also time the step's linear-layer GEMMs alone, a round after each step, and print the "
              "step's share of that limit");
  add_device_options(c, a->device, a->precision);
  add_cuda_graph_option(c, a->cuda_graph);
  c->add_flag("--loader", *loader,
              "Time the training input pipeline instead (decode + RandomResizedCrop + flip + normalise) on --data_path");
  c->add_option("--data_path,--data-path", l->data_path, "--loader: the data (folder, shards, ...)");
  c->add_option("--decode", l->decode, "--loader: exact or fast")->capture_default_str();
  c->add_option("--num_workers,--num-workers", l->num_workers, "--loader: loader threads")->capture_default_str();
  c->add_option("--input_size,--input-size", l->input_size, "--loader: crop size")->capture_default_str();
  c->add_option("--batches", l->batches, "--loader: batches to time (0: one epoch)")->capture_default_str();
  c->callback([a, l, loader] {
    if (!*loader) return run_bench(*a);
    l->batch_size = a->batch_size, l->json = a->json;
    set_threads(a->threads);
    run_loader_bench(*l);
  });
}

}  // namespace mae::cli
