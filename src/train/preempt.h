// Preemption-safe runs. A cluster scheduler ends a job with SIGTERM (SLURM, Kubernetes), or SIGUSR1 ahead of a time
// limit (`sbatch --signal=USR1@60`); a person presses Ctrl-C (SIGINT). The first such signal only raises a flag: the
// training loop finishes the micro-batch in flight, all ranks agree at the next step, checkpoint-last is written at
// the exact sample position and the process exits with kExitPreempted, so `--resume auto` continues bit for bit.
// A second signal ends the process at once (status 128 + signal): the last good checkpoint is not touched (writes
// are atomic) and a temp file being written is removed.
#pragma once

namespace mae::preempt {

// Exit status of a run stopped by a signal after saving its position (EX_TEMPFAIL: "try again": resume it).
constexpr int kExitPreempted = 75;

// Installs the handlers for SIGTERM, SIGINT and SIGUSR1 for the guard's life (the previous ones come back after).
class Guard {
 public:
  Guard();
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
};

// The signal received since the first guard was made (0: none).
int requested();

}  // namespace mae::preempt
