// mae linprobe: the official main_linprobe.py flags and semantics (frozen encoder, BatchNorm + linear head, LARS).
#include "cli/common.h"
#include "cli/device.h"
#include "eval/linprobe.h"

namespace mae::cli {

void add_linprobe(CLI::App& app) {
  auto a = std::make_shared<LinprobeArgs>();
  auto threads = std::make_shared<int>(0);
  auto precision = std::make_shared<std::string>("fp32");
  auto* c = app.add_subcommand("linprobe", "Linear probing of a frozen encoder (main_linprobe.py): BN + linear head, "
                                           "LARS, test accuracy every epoch");
  c->add_option("--finetune", a->finetune, "Pretrained encoder checkpoint (.safetensors or .pth)");
  c->add_option("--model", a->model, "Model preset, for checkpoints without a config");
  c->add_option("--nb_classes,--nb-classes", a->nb_classes, "Classes (0: from the data; must match it)")
      ->capture_default_str();
  // argparse's store_true / store_false on one dest: the last of the two on the command line wins.
  auto* gp = c->add_flag("--global_pool,--global-pool")->description("Feature: mean of the patch tokens");
  auto* cls = c->add_flag("--cls_token,--cls-token")->description("Feature: the cls token (the default)");
  c->add_option("--batch_size,--batch-size", a->batch_size, "Batch size")->capture_default_str();
  c->add_option("--epochs", a->epochs, "Epochs")->capture_default_str();
  c->add_option("--accum_iter,--accum-iter", a->accum_iter, "Gradient accumulation steps per update")
      ->capture_default_str();
  c->add_option("--weight_decay,--weight-decay", a->weight_decay, "Weight decay (LARS, matrices only)")
      ->capture_default_str();
  c->add_option("--lr", a->lr, "Absolute learning rate (0: blr × effective batch / 256)")->capture_default_str();
  c->add_option("--blr", a->blr, "Base learning rate: lr = blr × effective batch / 256")->capture_default_str();
  c->add_option("--min_lr,--min-lr", a->min_lr, "Lower lr bound of the cosine schedule")->capture_default_str();
  c->add_option("--warmup_epochs,--warmup-epochs", a->warmup_epochs, "Epochs of linear lr warmup")
      ->capture_default_str();
  c->add_option("--data_path,--data-path", a->data_path,
                "IDX folder, CIFAR-10 batches, or image folder with train/ and val/; default Fashion-MNIST");
  c->add_option("--output_dir,--output-dir", a->output_dir, "Probe checkpoint, log.txt, accuracy curve")
      ->capture_default_str();
  c->add_option("--resume", a->resume, "Probe checkpoint to continue (or to evaluate with --eval)");
  c->add_option("--start_epoch,--start-epoch", a->start_epoch, "Epoch to start at when not resuming")
      ->capture_default_str();
  c->add_option("--save_every,--save-every", a->save_every,
                "Also keep checkpoint-<epoch> every N epochs (0: only checkpoint-last)")->capture_default_str();
  c->add_flag("--eval", a->eval, "Only evaluate the probe given with --resume on the test split");
  c->add_flag("--cache_features,--cache-features", a->cache_features,
              "Fast mode: encoder run once over train and test without augmentation, head trained on cached features");
  c->add_flag("--raw_pixels,--raw-pixels", a->raw_pixels, "Baseline: the normalised image itself as the feature");
  c->add_flag("--random_init,--random-init", a->random_init,
              "Baseline: the --finetune config with official random init from --seed (weights ignored)");
  c->add_option("--seed", a->seed, "Seed (head init, data order, augmentation)")->capture_default_str();
  c->add_option("--num_workers,--num-workers", a->num_workers, "Loader threads")->capture_default_str();
  c->add_option("--threads", *threads, "Compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  c->add_option("--print_every_s", a->print_every_s, "Seconds between progress lines (not on a terminal)")
      ->capture_default_str();
  add_device_options(c, a->device, *precision);
  c->callback([a, threads, precision, c, gp, cls] {
    for (const CLI::Option* o : c->parse_order()) {
      if (o == gp) a->global_pool = true;
      if (o == cls) a->global_pool = false;
    }
    set_threads(*threads);
    select_device(a->device, *precision);
    run_linprobe(*a);
  });
}

}  // namespace mae::cli
