// mae pretrain: the official main_pretrain.py flags and semantics.
#include "cli/common.h"
#include "cli/device.h"
#include "train/pretrain.h"

namespace mae::cli {

void add_pretrain(CLI::App& app) {
  auto a = std::make_shared<PretrainArgs>();
  auto threads = std::make_shared<int>(0);
  auto precision = std::make_shared<std::string>("fp32");
  auto* c = app.add_subcommand("pretrain", "MAE pretraining (main_pretrain.py): checkpoints, exact resume, logs, curve");
  c->add_option("--model", a->model, "Model preset (see `mae bench --model x` for the list)")->capture_default_str();
  c->add_option("--input_size,--input-size", a->input_size, "Image size (0: the preset's)")->capture_default_str();
  c->add_option("--in_chans,--in-chans", a->in_chans, "Input channels (0: follow the data)")->capture_default_str();
  c->add_option("--mask_ratio,--mask-ratio", a->mask_ratio, "Masking ratio (fraction of removed patches)")
      ->capture_default_str();
  c->add_flag("--norm_pix_loss,--norm-pix-loss", a->norm_pix_loss, "Use (per-patch) normalized pixels as targets");
  c->add_option("--batch_size,--batch-size", a->batch_size, "Batch size per process")->capture_default_str();
  c->add_option("--epochs", a->epochs, "Epochs")->capture_default_str();
  c->add_option("--accum_iter,--accum-iter", a->accum_iter, "Gradient accumulation steps per update")
      ->capture_default_str();
  c->add_option("--weight_decay,--weight-decay", a->weight_decay, "Weight decay")->capture_default_str();
  c->add_option("--lr", a->lr, "Absolute learning rate (0: blr × effective batch / 256)")->capture_default_str();
  c->add_option("--blr", a->blr, "Base learning rate: lr = blr × effective batch / 256")->capture_default_str();
  c->add_option("--min_lr,--min-lr", a->min_lr, "Lower lr bound of the cosine schedule")->capture_default_str();
  c->add_option("--warmup_epochs,--warmup-epochs", a->warmup_epochs, "Epochs of linear lr warmup")
      ->capture_default_str();
  c->add_option("--max_steps,--max-steps", a->max_steps,
                "Stop after this many optimizer steps of the run counted from step 0 (0: all epochs)")
      ->capture_default_str();
  c->add_option("--data_path,--data-path", a->data_path,
                "IDX folder, CIFAR-10 batches, or image folder (<root>/train/<class>/*); default Fashion-MNIST")
      ->capture_default_str();
  c->add_option("--num_workers,--num-workers", a->num_workers, "Loader threads decoding ahead")->capture_default_str();
  c->add_option("--output_dir,--output-dir", a->output_dir, "Checkpoints go here")->capture_default_str();
  c->add_option("--log_dir,--log-dir", a->log_dir, "log.txt, metrics.jsonl, loss_curve.svg (default output_dir)");
  c->add_option("--resume", a->resume, "Training checkpoint to resume from, or 'auto' (latest in output_dir)");
  c->add_option("--start_epoch,--start-epoch", a->start_epoch, "Epoch to start at when not resuming")
      ->capture_default_str();
  c->add_option("--save_every,--save-every", a->save_every, "Also keep checkpoint-<epoch> every N epochs (0: never)")
      ->capture_default_str();
  c->add_option("--seed", a->seed, "Seed (init, data order, augmentation, masks)")->capture_default_str();
  c->add_option("--threads", *threads, "Compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  c->add_option("--print_every_s", a->print_every_s, "Seconds between progress lines (not on a terminal)")
      ->capture_default_str();
  add_device_options(c, a->device, *precision);
  add_cuda_graph_option(c, a->cuda_graph);
  c->callback([a, threads, precision] {
    check_cuda_graph(a->cuda_graph, a->device);
    set_threads(*threads);
    select_device(a->device, *precision);  // "built without CUDA" / "no CUDA device found" before any work
    run_pretrain(*a);
  });
}

}  // namespace mae::cli
