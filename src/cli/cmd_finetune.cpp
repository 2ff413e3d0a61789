// mae finetune: the official main_finetune.py flags and semantics.
#include "cli/common.h"
#include "core/error.h"
#include "cli/run_options.h"
#include "train/finetune.h"

namespace mae::cli {

void add_finetune(CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
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
  c->add_option("--weight_decay,--weight-decay", a->weight_decay, "Weight decay")->capture_default_str();
  c->add_option("--layer_decay,--layer-decay", a->layer_decay, "Layer-wise lr decay")->capture_default_str();
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
  c->add_flag("--eval", a->eval, "Only evaluate the classifier given by --resume and print its accuracy");
  c->add_option("--logits", a->logits,
                "With --eval: write each image's logits (N, nb_classes) and label (N) to this .safetensors");
  auto run = add_run_options(c, *a);
  c->callback([a, run] {
    start_run(*run, *a, !a->eval);
    if (a->aa == "none" || a->aa == "None") a->aa.clear();
    if (!a->logits.empty() && !a->eval) fail("--logits is for --eval (the logits of an evaluation)");
    exit_if_preempted(run_finetune(*a).preempted);
  });
}

}  // namespace mae::cli
