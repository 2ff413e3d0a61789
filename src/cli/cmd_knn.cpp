// mae knn: weighted k-NN classification on frozen encoder features (DINO / InstDisc monitor), plus the raw-pixel
// and random-init baselines.
#include "cli/common.h"
#include "cli/device.h"
#include "eval/knn.h"

namespace mae::cli {

void add_knn(CLI::App& app) {
  auto a = std::make_shared<KnnArgs>();
  auto threads = std::make_shared<int>(0);
  auto precision = std::make_shared<std::string>("fp32"), device = std::make_shared<std::string>("cpu");
  auto* c = app.add_subcommand("knn", "Weighted k-NN accuracy of frozen encoder features (train split = bank, test "
                                      "split = queries)");
  c->add_option("--checkpoint", a->checkpoint, "Encoder weights (.safetensors or .pth; a pretrain checkpoint works)");
  c->add_option("--model", a->model, "Model preset, for files without a config (or with --random_init alone)");
  c->add_option("--data_path,--data-path", a->data_path,
                "IDX folder, CIFAR-10 batches, or image folder with train/ and val/; default Fashion-MNIST");
  // argparse's store_true / store_false on one dest: the last of the two on the command line wins.
  auto* gp = c->add_flag("--global_pool,--global-pool")
                 ->description("Feature: mean of the patch tokens (default: cls token)");
  auto* cls = c->add_flag("--cls_token,--cls-token")->description("Feature: the cls token (the default)");
  c->add_option("--k", a->k, "Neighbours")->capture_default_str();
  c->add_option("--temperature", a->temperature, "Vote weight exp(similarity / T)")->capture_default_str();
  c->add_option("--batch_size,--batch-size", a->batch_size, "Images per encoder forward")->capture_default_str();
  c->add_option("--num_workers,--num-workers", a->num_workers, "Loader threads")->capture_default_str();
  c->add_flag("--raw_pixels,--raw-pixels", a->raw_pixels, "Baseline: the normalised image itself as the feature");
  c->add_flag("--random_init,--random-init", a->random_init,
              "Baseline: the checkpoint's config with official random init from --seed (weights ignored)");
  c->add_option("--seed", a->seed, "Seed of --random_init")->capture_default_str();
  c->add_option("--output_dir,--output-dir", a->output_dir, "Write knn.json here (default: write nothing)");
  c->add_option("--threads", *threads, "Compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  add_device_options(c, *device, *precision);
  c->callback([a, threads, precision, device, c, gp, cls] {
    for (const CLI::Option* o : c->parse_order()) {
      if (o == gp) a->global_pool = true;
      if (o == cls) a->global_pool = false;
    }
    set_threads(*threads);
    a->device = select_device(*device, *precision);
    run_knn(*a);
  });
}

}  // namespace mae::cli
