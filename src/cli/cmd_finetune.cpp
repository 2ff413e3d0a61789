// mae finetune: the official main_finetune.py flags and semantics.
#include "cli/common.h"
#include "cli/device.h"
#include "train/finetune.h"

namespace mae::cli {

void add_finetune(CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  auto threads = std::make_shared<int>(0);
  auto dist_eval = std::make_shared<bool>(false);
  auto* c = app.add_subcommand("finetune", "End-to-end fine-tuning for classification (main_finetune.py): layer-wise "
                                           "lr decay, drop path, mixup/cutmix, RandAugment, random erasing; --eval");
  c->add_option("--finetune", a->finetune, "MAE checkpoint to fine-tune from (omit to train from scratch)");
  c->add_option("--model", a->model,
                "Model preset (vit_base_patch16 = mae_vit_base_patch16, ...; default: the checkpoint's config)");
  c->add_option("--input_size,--input-size", a->input_size, "Image size (0: the checkpoint's / preset's)")
      ->capture_default_str();
  c->add_option("--in_chans,--in-chans", a->in_chans, "Input channels (0: the data's; 1 or 3 converts the images)")
      ->capture_default_str();
  c->add_option("--nb_classes,--nb-classes", a->nb_classes, "Number of classes (0: the dataset's)")
      ->capture_default_str();
  c->add_flag_callback("--global_pool,--global-pool", [a] { a->global_pool = true; },
                       "Mean of the patch tokens + fc_norm (the default)");
  c->add_flag_callback("--cls_token,--cls-token", [a] { a->global_pool = false; },
                       "Use the class token (+ norm) instead of global pooling");
  c->add_option("--drop_path,--drop-path", a->drop_path, "Drop path (stochastic depth) rate")->capture_default_str();
  c->add_option("--batch_size,--batch-size", a->batch_size, "Batch size per process")->capture_default_str();
  c->add_option("--epochs", a->epochs, "Epochs")->capture_default_str();
  c->add_option("--accum_iter,--accum-iter", a->accum_iter, "Gradient accumulation steps per update")
      ->capture_default_str();
  c->add_option("--weight_decay,--weight-decay", a->weight_decay, "Weight decay")->capture_default_str();
  c->add_option("--lr", a->lr, "Absolute learning rate (0: blr × effective batch / 256)")->capture_default_str();
  c->add_option("--blr", a->blr, "Base learning rate: lr = blr × effective batch / 256")->capture_default_str();
  c->add_option("--layer_decay,--layer-decay", a->layer_decay, "Layer-wise lr decay")->capture_default_str();
  c->add_option("--min_lr,--min-lr", a->min_lr, "Lower lr bound of the cosine schedule")->capture_default_str();
  c->add_option("--warmup_epochs,--warmup-epochs", a->warmup_epochs, "Epochs of linear lr warmup")
      ->capture_default_str();
  c->add_option("--aa", a->aa, "RandAugment policy (timm), '' or none to disable")->capture_default_str();
  c->add_option("--smoothing", a->smoothing, "Label smoothing")->capture_default_str();
  c->add_option("--reprob", a->reprob, "Random erase probability")->capture_default_str();
  c->add_option("--remode", a->remode, "Random erase mode: pixel, rand or const")->capture_default_str();
  c->add_option("--recount", a->recount, "Random erase count")->capture_default_str();
  c->add_option("--mixup", a->mixup, "Mixup alpha (mixup on if > 0)")->capture_default_str();
  c->add_option("--cutmix", a->cutmix, "CutMix alpha (cutmix on if > 0)")->capture_default_str();
  c->add_option("--mixup_prob,--mixup-prob", a->mixup_prob, "Probability of mixing a batch")->capture_default_str();
  c->add_option("--mixup_switch_prob,--mixup-switch-prob", a->mixup_switch_prob,
                "Probability of cutmix instead of mixup when both are on")
      ->capture_default_str();
  c->add_option("--mixup_mode,--mixup-mode", a->mixup_mode, "How to apply mixup/cutmix (batch)")->capture_default_str();
  c->add_option("--data_path,--data-path", a->data_path,
                "IDX folder, CIFAR-10 batches, or image folder with train/ and val/; default Fashion-MNIST")
      ->capture_default_str();
  c->add_option("--num_workers,--num-workers", a->num_workers, "Loader threads decoding ahead")->capture_default_str();
  c->add_option("--output_dir,--output-dir", a->output_dir, "checkpoint-last / checkpoint-best go here")
      ->capture_default_str();
  c->add_option("--log_dir,--log-dir", a->log_dir, "log.txt and accuracy_curve.svg (default output_dir)");
  c->add_option("--resume", a->resume, "Training checkpoint to resume ('auto': output_dir's); with --eval the "
                                       "fine-tuned classifier to evaluate");
  c->add_option("--stop_epoch,--stop-epoch", a->stop_epoch,
                "Stop after this many epochs (the lr schedule still spans --epochs; resume later); 0: all")
      ->capture_default_str();
  c->add_flag("--eval", a->eval, "Only evaluate the classifier given by --resume and print its accuracy");
  c->add_flag("--dist_eval,--dist-eval", *dist_eval, "Accepted for compatibility (single process: ignored)");
  c->add_option("--seed", a->seed, "Seed (init, data order, augmentation, mixup, drop path)")->capture_default_str();
  c->add_option("--threads", *threads, "Compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  c->add_option("--print_every_s", a->print_every_s, "Seconds between progress lines (not on a terminal)")
      ->capture_default_str();
  auto precision = std::make_shared<std::string>("fp32");
  add_device_options(c, a->device, *precision);
  c->callback([a, threads, precision] {
    set_threads(*threads);
    select_device(a->device, *precision);
    if (a->aa == "none" || a->aa == "None") a->aa.clear();
    run_finetune(*a);
  });
}

}  // namespace mae::cli
