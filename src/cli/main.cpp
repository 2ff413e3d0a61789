// mae: masked-autoencoder pretraining of Vision Transformers, and using what it learns. One binary, subcommands.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "cli/common.h"
#include "cli/run_options.h"
#include "core/error.h"
#include "dist/comm.h"

namespace {

// Under mpirun/srun: one rank failing ends the whole job (MPI_Abort) instead of leaving the others in a collective.
int run(int argc, char** argv) {
  CLI::App app{"mae — masked-autoencoder (MAE) pretraining of Vision Transformers, numerically the official model"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mae 0.1\nmpi: ") + (mae::dist::built_with_mpi() ? "yes" : "no"));
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
  mae::cli::add_shard(app);
  mae::cli::add_export(app);
  mae::cli::add_classify(app);
#ifdef MAE_SERVE
  mae::cli::add_serve(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints the flag's problem (unknown flag, missing value, ...) and exits non-zero
    if (rc != 0 && mae::dist::world() > 1) mae::dist::fatal("bad command line (see above)", rc);
    return rc;
  } catch (const mae::cli::ExitStatus& e) {
    return e.code;  // said what it had to say (a preempted run)
  } catch (const mae::Error& e) {
    mae::dist::fatal(e.what());
  } catch (const std::bad_alloc&) {
    mae::dist::fatal("out of memory (try a smaller --batch_size)");
  } catch (const std::exception& e) {
    mae::dist::fatal(e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    mae::dist::init(&argc, &argv);
    // Ranks sharing a node split its cores unless the user chose (--threads, or OMP_NUM_THREADS).
    if (const int t = mae::dist::default_threads(); t > 0 && !std::getenv("OMP_NUM_THREADS")) mae::cli::set_threads(t);
  } catch (const std::exception& e) {
    mae::dist::fatal(e.what());
  }
  const int rc = run(argc, argv);
  mae::dist::finalize();
  return rc;
}
