// mae: masked-autoencoder pretraining of Vision Transformers, and using what it learns. One binary, subcommands.
#include <cstdio>
#include <exception>

#include "cli/common.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"mae — masked-autoencoder (MAE) pretraining of Vision Transformers, numerically the official model"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mae 0.1");
  // As argparse in the official scripts: a flag given twice takes its last value.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  mae::cli::add_forward(app);
  mae::cli::add_info(app);
  mae::cli::add_bench(app);
  mae::cli::add_init(app);
  mae::cli::add_convert(app);
  mae::cli::add_pretrain(app);
  mae::cli::add_finetune(app);
  mae::cli::add_knn(app);
  mae::cli::add_linprobe(app);
  mae::cli::add_reconstruct(app);
  mae::cli::add_embed(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // prints the flag's problem (unknown flag, missing value, ...) and exits non-zero
  } catch (const mae::Error& e) {
    std::fprintf(stderr, "mae: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mae: error: out of memory (try a smaller --batch_size)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mae: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
