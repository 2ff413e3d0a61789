#include "train/pretrain.h"

#include <cmath>
#include <memory>
#include <type_traits>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "dist/comm.h"
#include "model/mae.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "ops/dispatch.h"
#include "train/adamw.h"
#include "train/device_mirror.h"
#include "train/engine.h"
#include "train/step_graph.h"

namespace mae {

namespace {

void validate_model_flags(const PretrainArgs& a) {
  if (!(a.mask_ratio > 0 && a.mask_ratio < 1)) fail("--mask_ratio must be in (0, 1), got ", a.mask_ratio);
  if (!(std::isfinite(a.weight_decay) && a.weight_decay >= 0)) fail("--weight_decay must be ≥ 0, got ", a.weight_decay);
  if (a.input_size < 0 || a.in_chans < 0) fail("--input_size and --in_chans must be ≥ 0");
}

double grad_norm_host(const float* g, size_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (size_t i = 0; i < n; ++i) s += double(g[i]) * g[i];
  return std::sqrt(s);
}

// The gradient average over ranks. A CUDA build with NCCL all-reduces the device buffer on the compute stream;
// otherwise MPI over host memory (the mirror downloads and uploads when the model is on a device).
template <class Bk> void average_mae_grads(MaeModel<Bk>& model, TrainMirror<Bk>& mirror, size_t np) {
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

// The data and the model config it implies (in_chans follows the data unless --in_chans).
struct PretrainData {
  std::unique_ptr<Dataset> ds;
  ModelConfig cfg;
  LoaderConfig lc;
};

PretrainData open_data(const PretrainArgs& a) {
  PretrainData d;
  d.ds = open_dataset(a.data_path, "train", {a.output_dir});
  d.cfg = preset(a.model);
  if (a.input_size > 0) d.cfg.img_size = a.input_size;
  d.cfg.in_chans = a.in_chans > 0 ? a.in_chans : d.ds->channels();
  d.cfg.norm_pix_loss = a.norm_pix_loss;
  d.cfg.validate("--model " + a.model + " with --input_size " + std::to_string(d.cfg.img_size));
  const int world = dist::world();
  d.lc.batch_size = a.batch_size;
  d.lc.seed = a.seed;
  d.lc.num_workers = a.num_workers;
  d.lc.decode = parse_decode_mode(a.decode);
  d.lc.rank = dist::rank();
  d.lc.world = world;
  d.lc.transform.size = d.cfg.img_size;
  d.lc.transform.channels = d.cfg.in_chans;
  d.lc.transform.train = true;  // RandomResizedCrop(scale 0.2–1, bicubic) + horizontal flip
  d.lc.transform.norm = normalization_for_channels(d.ds->normalization(), d.cfg.in_chans);
  check_one_batch(*d.ds, a.batch_size, world);
  return d;
}

// model = models_mae.__dict__[args.model](norm_pix_loss=args.norm_pix_loss); optimizer = AdamW(param_groups,
// betas=(0.9, 0.95)); engine_pretrain: loss, _, _ = model(samples, mask_ratio=args.mask_ratio).
template <class Bk> class PretrainTask final : public TrainTask {
 public:
  PretrainTask(const PretrainArgs& a, PretrainData d)
      : a_(a), d_(std::move(d)), loader_(*d_.ds, d_.lc), model_(d_.cfg, a.batch_size, a.mask_ratio), mirror_(model_),
        graph_(model_),
        L_(d_.cfg.num_patches()), noise_(size_t(a.batch_size) * L_), mask_key_(Rng::derive(a.seed, stream::mask)) {
    model_.init(Rng::derive(a.seed, stream::init));
    model_.zero_grad();
    mirror_.to_host(false);
    oc_.weight_decay = float(a.weight_decay);
    if (!dist::is_root()) return;
    const Normalization& n = d_.lc.transform.norm;
    std::fprintf(stderr, "data: %s\nnormalize: mean %s std %s\nmodel: %s %s\n", d_.ds->description().c_str(),
                 nlohmann::json(n.mean).dump().c_str(), nlohmann::json(n.std).dump().c_str(), a.model.c_str(),
                 config_to_json(d_.cfg).dump().c_str());
  }

  std::string command() const override { return "pretrain"; }
  std::string loss_tag() const override { return "train_loss"; }
  // `normalize` is what the loader normalised with (measured on the data for IDX): reconstruct/embed read it back
  // so they feed the model pixels scaled the way it was trained.
  nlohmann::json args() const override {
    const Normalization& n = d_.lc.transform.norm;
    return {{"normalize", {{"mean", n.mean}, {"std", n.std}}}, {"model", a_.model}, {"input_size", a_.input_size},
            {"in_chans", a_.in_chans},       {"mask_ratio", a_.mask_ratio},       {"norm_pix_loss", a_.norm_pix_loss},
            {"batch_size", a_.batch_size},   {"epochs", a_.epochs},               {"accum_iter", a_.accum_iter},
            {"weight_decay", a_.weight_decay}, {"lr", a_.lr},                     {"blr", a_.blr},
            {"min_lr", a_.min_lr},           {"warmup_epochs", a_.warmup_epochs}, {"max_steps", a_.max_steps},
            {"data_path", a_.data_path},     {"num_workers", a_.num_workers},     {"decode", a_.decode},     {"output_dir", a_.output_dir},
            {"seed", a_.seed}};
  }
  int64_t batches_per_epoch() const override { return loader_.batches_per_epoch(); }
  int batch_images() const override { return a_.batch_size; }

  void start_epoch(int epoch, int64_t first_batch) override { loader_.start_epoch(epoch, first_batch); }
  void zero_grad() override { model_.zero_grad(); }

  void forward_backward(int epoch, int64_t i, float dloss) override {
    const Batch* b = loader_.next();
    if (!b) fail("the loader ended early at batch ", i, " of epoch ", epoch + 1);
    // Masking noise of a sample depends on (seed, epoch, dataset index) only: reproducible on resume and identical
    // whatever the number of processes.
    for (int s = 0; s < b->size; ++s) {
      Rng r = Rng::keyed(mask_key_, uint64_t(epoch), uint64_t(b->indices[s]));
      for (int l = 0; l < L_; ++l) noise_[size_t(s) * L_ + l] = r.uniform_f();
    }
    if (a_.cuda_graph) {
      graph_.run(mirror_.images(b->images), noise_.data(), dloss);
    } else {
      model_.forward_nowait(mirror_.images(b->images), noise_.data());
      model_.backward(dloss);  // loss /= accum_iter
    }
  }

  void optimizer_step(float lr, long step) override {
    // One blocking all-reduce over the flat gradient buffer after backward (no bucketing, no overlap): each rank
    // holds ∂(mean loss of its slice)/∂θ, their mean is ∂(mean loss of the global batch)/∂θ.
    if (dist::world() > 1) average_grads();
    mirror_.grad_norm_start(grad_norm_host);
    adamw_step<Bk>(model_.params(), model_.params_data(), mirror_.m(), mirror_.v(), model_.grads_data(), lr, oc_,
                   step);
    model_.zero_grad();
    norm_pending_ = true;
  }
  double loss_wait() override { return model_.loss_wait(); }
  double grad_norm() override {
    if (norm_pending_) gnorm_ = mirror_.grad_norm_wait(), norm_pending_ = false;
    return gnorm_;
  }
  void average_grads() override { average_mae_grads(model_, mirror_, model_.params().total); }

  void save(const std::string& path, const std::map<std::string, std::string>& meta, bool weights_only,
            bool grads) override {
    mirror_.to_host(grads);
    const TrainBuffers buf = mirror_.host_buffers();
    const ParamList& pl = model_.params();
    std::vector<NamedBuffer> extra;
    add_adamw_slots(extra, pl, buf, weights_only, grads);
    save_params(path, d_.cfg, pl, buf.params, extra, meta);
  }
  void load(const io::SafeTensorsReader& f, bool grads) override {
    const ModelConfig have = read_config(f);
    if (config_to_json(have) != config_to_json(d_.cfg))
      fail(f.path(), ": checkpoint is for another model: ", config_to_json(have).dump(), " but this run's model is ",
           config_to_json(d_.cfg).dump());
    const TrainBuffers buf = mirror_.host_buffers();
    const ParamList& pl = model_.params();
    load_params(f, pl, buf.params);
    read_adamw_slots(f, pl, buf, grads);
  }
  // Every rank starts from rank 0's parameters and optimizer state (and accumulated gradients, mid-update).
  void broadcast(bool grads) override {
    broadcast_adamw_state(mirror_.host_buffers(), model_.params().total, grads);
    mirror_.to_device(grads);
  }

 private:
  const PretrainArgs& a_;
  PretrainData d_;
  Loader loader_;
  MaeModel<Bk> model_;
  TrainMirror<Bk> mirror_;  // AdamW moments; host views of the state when the model is on a device
  GraphedStep<Bk> graph_;   // --cuda_graph
  const int L_;
  std::vector<float> noise_;
  const uint64_t mask_key_;
  AdamWConfig oc_;
  bool norm_pending_ = false;
  double gnorm_ = NAN;
};

template <class Bk> RunResult pretrain_on(const PretrainArgs& a) {
  PretrainTask<Bk> task(a, open_data(a));
  return run_training(a, task);
}

}  // namespace

double run_pretrain(const PretrainArgs& a, bool* preempted) {
  validate(a);
  validate_model_flags(a);
  const RunResult r = with_backend(a.spec, [&]<class Bk>() { return pretrain_on<Bk>(a); });
  if (preempted) *preempted = r.preempted;
  return r.epochs_run > 0 ? r.last_train_loss : NAN;
}

}  // namespace mae
