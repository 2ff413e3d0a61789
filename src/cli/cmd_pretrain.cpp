// mae pretrain: the official main_pretrain.py flags and semantics.
#include "cli/common.h"
#include "cli/device.h"
#include "cli/run_options.h"
#include "train/pretrain.h"

namespace mae::cli {

void add_pretrain(CLI::App& app) {
  auto a = std::make_shared<PretrainArgs>();
  auto* c = app.add_subcommand("pretrain", "MAE pretraining (main_pretrain.py): checkpoints, exact resume, logs, curve");
  c->add_option("--model", a->model, "Model preset (see `mae bench --model x` for the list)")->capture_default_str();
  c->add_option("--input_size,--input-size", a->input_size, "Image size (0: the preset's)")->capture_default_str();
  c->add_option("--in_chans,--in-chans", a->in_chans, "Input channels (0: follow the data)")->capture_default_str();
  c->add_option("--mask_ratio,--mask-ratio", a->mask_ratio, "Masking ratio (fraction of removed patches)")
      ->capture_default_str();
  c->add_flag("--norm_pix_loss,--norm-pix-loss", a->norm_pix_loss, "Use (per-patch) normalized pixels as targets");
  c->add_option("--weight_decay,--weight-decay", a->weight_decay, "Weight decay")->capture_default_str();
  auto run = add_run_options(c, *a);
  add_cuda_graph_option(c, a->cuda_graph);
  c->callback([a, run] {
    check_cuda_graph(a->cuda_graph, a->device);
    start_run(*run, *a);
    bool preempted = false;
    run_pretrain(*a, &preempted);
    exit_if_preempted(preempted);
  });
}

}  // namespace mae::cli
