// Shared pieces of the subcommands: thread setup, input checks.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace mae::cli {

// Sets OpenMP and OpenBLAS to `threads` (0 = leave the defaults: OMP_NUM_THREADS or all cores). Both run on the
// same libgomp pool (OpenBLAS OpenMP build), so they never oversubscribe the cores.
void set_threads(int threads);
int current_threads();

// An output file or folder about to be written: refuses one that exists (unless `force`) and one whose folder does
// not exist, naming it, before any work is done.
void check_output_path(const std::string& path, bool force);

// Registration of each subcommand (one file each).
void add_forward(CLI::App& app);
void add_info(CLI::App& app);
void add_bench(CLI::App& app);
void add_init(CLI::App& app);
void add_convert(CLI::App& app);
void add_pretrain(CLI::App& app);
void add_finetune(CLI::App& app);
void add_knn(CLI::App& app);
void add_linprobe(CLI::App& app);
void add_reconstruct(CLI::App& app);
void add_embed(CLI::App& app);
void add_shard(CLI::App& app);
void add_export(CLI::App& app);
void add_classify(CLI::App& app);
#ifdef MAE_SERVE
void add_serve(CLI::App& app);
#endif

}  // namespace mae::cli
