// mae linprobe: the official main_linprobe.py flags and semantics (frozen encoder, BatchNorm + linear head, LARS).
#include "cli/common.h"
#include "cli/run_options.h"
#include "train/linprobe.h"

namespace mae::cli {

void add_linprobe(CLI::App& app) {
  auto a = std::make_shared<LinprobeArgs>();
  auto* c = app.add_subcommand("linprobe", "Linear probing of a frozen encoder (main_linprobe.py): BN + linear head, "
                                           "LARS, test accuracy every epoch");
  c->add_option("--finetune", a->finetune, "Pretrained encoder checkpoint (.safetensors or .pth)");
  c->add_option("--model", a->model, "Model preset, for checkpoints without a config");
  c->add_option("--nb_classes,--nb-classes", a->nb_classes, "Classes (0: from the data; must match it)")
      ->capture_default_str();
  // argparse's store_true / store_false on one dest: the last of the two on the command line wins.
  auto* gp = c->add_flag("--global_pool,--global-pool")->description("Feature: mean of the patch tokens");
  auto* cls = c->add_flag("--cls_token,--cls-token")->description("Feature: the cls token (the default)");
  c->add_option("--weight_decay,--weight-decay", a->weight_decay, "Weight decay (LARS, matrices only)")
      ->capture_default_str();
  c->add_flag("--eval", a->eval, "Only evaluate the probe given with --resume on the test split");
  c->add_flag("--cache_features,--cache-features", a->cache_features,
              "Fast mode: encoder run once over train and test without augmentation, head trained on cached features");
  c->add_flag("--raw_pixels,--raw-pixels", a->raw_pixels, "Baseline: the normalised image itself as the feature");
  c->add_flag("--random_init,--random-init", a->random_init,
              "Baseline: the --finetune config with official random init from --seed (weights ignored)");
  auto run = add_run_options(c, *a);
  c->callback([a, run, c, gp, cls] {
    for (const CLI::Option* o : c->parse_order()) {
      if (o == gp) a->global_pool = true;
      if (o == cls) a->global_pool = false;
    }
    start_run(*run, *a, !a->eval);
    exit_if_preempted(run_linprobe(*a).preempted);
  });
}

}  // namespace mae::cli
