#include "cli/run_options.h"

#include <cstdlib>

#include "cli/common.h"
#include "cli/device.h"
#include "core/error.h"
#include "dist/comm.h"
#include "train/preempt.h"

namespace mae::cli {

namespace {

// Official flags (main_*.py, submitit_*.py) that have no meaning here, and what happens instead.
struct Ignored {
  const char* flags;
  bool takes_value;
  const char* instead;
};
constexpr Ignored kIgnored[] = {
    {"--pin_mem", false, "loader threads hand batches over in memory: there is nothing to pin on the CPU"},
    {"--no_pin_mem", false, "loader threads hand batches over in memory: there is nothing to pin on the CPU"},
    {"--world_size", true, "the world is the MPI launcher's (mpirun -np N / srun -n N)"},
    {"--local_rank,--local-rank", true, "ranks and local ranks come from the MPI launcher"},
    {"--dist_url", true, "processes meet through MPI, not a URL"},
    {"--dist_on_itp", false, "processes meet through MPI"},
    {"--dist_eval", false, "rank 0 evaluates the whole test split (the accuracies are a single process's)"},
    {"--job_dir", true, "submitit: use --output_dir, and launch with sbatch + srun --mpi=pmix"},
    {"--nodes", true, "submitit: launch with sbatch/srun --mpi=pmix or mpirun across nodes"},
    {"--ngpus", true, "submitit: one rank per GPU, as many ranks as the launcher starts"},
    {"--timeout", true, "submitit: the scheduler's time limit; SIGTERM/SIGUSR1 save checkpoint-last"},
    {"--partition", true, "submitit: give the partition to sbatch"},
    {"--use_volta32", false, "submitit: choose the GPUs with sbatch"},
    {"--comment", true, "submitit: give the comment to sbatch"},
};

}  // namespace

std::shared_ptr<RunCli> add_run_options(CLI::App* c, RunArgs& a) {
  auto r = std::make_shared<RunCli>();
  c->add_option("--batch_size,--batch-size", a.batch_size, "Batch size per process")->capture_default_str();
  c->add_option("--epochs", a.epochs, "Epochs")->capture_default_str();
  c->add_option("--accum_iter,--accum-iter", a.accum_iter, "Gradient accumulation steps per update")
      ->capture_default_str();
  c->add_option("--lr", a.lr, "Absolute learning rate (0: blr × effective batch / 256)")->capture_default_str();
  c->add_option("--blr", a.blr, "Base learning rate: lr = blr × effective batch / 256")->capture_default_str();
  c->add_option("--min_lr,--min-lr", a.min_lr, "Lower lr bound of the cosine schedule")->capture_default_str();
  c->add_option("--warmup_epochs,--warmup-epochs", a.warmup_epochs, "Epochs of linear lr warmup")
      ->capture_default_str();
  c->add_option("--max_steps,--max-steps", a.max_steps,
                "Stop after this many optimizer steps of the run counted from step 0 (0: all epochs)")
      ->capture_default_str();
  c->add_option("--stop_epoch,--stop-epoch", a.stop_epoch,
                "Stop after this many epochs (the lr schedule still spans --epochs; resume later); 0: all")
      ->capture_default_str();
  c->add_option("--data_path,--data-path", a.data_path,
                "IDX folder, CIFAR-10 batches, image folder (<root>/train/<class>/*), or tar shards (a folder of "
                ".tar, or a pattern such as 'shards/train-{000000..000146}.tar'); default Fashion-MNIST");
  c->add_option("--decode", a.decode,
                "Training crops: exact (decode whole JPEGs, then crop: PIL's bytes) or fast (decode only the crop, "
                "at a reduced DCT scale when it is large)")
      ->capture_default_str();
  c->add_option("--num_workers,--num-workers", a.num_workers, "Loader threads decoding ahead")->capture_default_str();
  c->add_option("--seed", a.seed, "Seed (init, data order, augmentation, masks)")->capture_default_str();
  c->add_option("--output_dir,--output-dir", a.output_dir, "Checkpoints go here")->capture_default_str();
  c->add_option("--log_dir,--log-dir", a.log_dir,
                "log.txt, metrics.jsonl, curves and TensorBoard event files (default: output_dir)");
  c->add_option("--resume", a.resume, "Checkpoint of this command to continue from, or 'auto' (newest in output_dir)");
  c->add_flag("--overwrite", a.overwrite,
              "Start a new run in an --output_dir that holds another run's log and checkpoints, replacing them "
              "(without it such a run is refused)");
  c->add_option("--start_epoch,--start-epoch", a.start_epoch, "Epoch to start at when not resuming (-1: 0)")
      ->capture_default_str();
  c->add_option("--save_every,--save-every", a.save_every, "Also keep checkpoint-<epoch> every N epochs (0: never)")
      ->capture_default_str();
  c->add_option("--save_every_steps,--save-every-steps", a.save_every_steps,
                "Also write checkpoint-last every N optimizer steps (0: off)")->capture_default_str();
  c->add_option("--save_every_minutes,--save-every-minutes", a.save_every_minutes,
                "Also write checkpoint-last every M minutes (0: off)")->capture_default_str();
  c->add_option("--keep_last,--keep-last", a.keep_last,
                "Keep only the K newest checkpoint-<epoch> files (0: all; checkpoint-last/-best always kept)")
      ->capture_default_str();
  c->add_option("--print_every_s", a.print_every_s, "Seconds between progress lines (not on a terminal)")
      ->capture_default_str();
  c->add_option("--threads", r->threads, "Compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  add_device_options(c, a.device, r->precision);
  for (const Ignored& ig : kIgnored) {
    const std::string first = std::string(ig.flags).substr(0, std::string(ig.flags).find(','));
    const std::string note = first + " does not apply to mae: " + ig.instead + " (ignored)";
    auto keep = [r, note] { r->ignored.push_back(note); };
    if (ig.takes_value)
      c->add_option_function<std::string>(ig.flags, [keep](const std::string&) { keep(); },
                                          "Official flag, accepted and ignored (" + std::string(ig.instead) + ")");
    else
      c->add_flag_callback(ig.flags, keep, "Official flag, accepted and ignored (" + std::string(ig.instead) + ")");
  }
  return r;
}

void start_run(const RunCli& r, RunArgs& a, bool trains) {
  if (dist::is_root())
    for (const auto& n : r.ignored) std::fprintf(stderr, "note: %s\n", n.c_str());
  // torchrun / torch.distributed.launch set WORLD_SIZE for processes that then each run alone here: refuse, or N
  // processes would all train as rank 0 into one folder.
  if (const char* ws = std::getenv("WORLD_SIZE"); ws && std::atoi(ws) > 1 && dist::world() == 1)
    fail("launched by torchrun / torch.distributed (WORLD_SIZE=", ws, ") but mae's processes meet through MPI: run "
         "`mpirun -np ", ws, " mae ...` (or under SLURM `srun --mpi=pmix -n ", ws, " mae ...`)");
  set_threads(r.threads);
  a.spec = select_device(a.device, r.precision);  // "built without CUDA" / "no CUDA device found" before any work
  // Signal handlers for a training run's whole life, from before the data and model are built: a signal during a
  // slow start is then kept for the run (it finishes a step and saves) instead of killing the process. An
  // evaluation (--eval) has nothing to save: Ctrl-C stops it at once.
  if (trains) static preempt::Guard from_start;
}

void exit_if_preempted(bool preempted) {
  if (!preempted) return;
  if (dist::is_root())
    std::fprintf(stderr, "stopped by a signal: checkpoint-last holds the exact position; continue with the same "
                 "command and --resume auto (exit status %d)\n", preempt::kExitPreempted);
  throw ExitStatus{preempt::kExitPreempted};
}

}  // namespace mae::cli
