// The flags every training command shares (train/run_args.h), registered once, with the official scripts' names;
// and the official flags that do not apply here, accepted so that official command lines run unchanged.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "train/run_args.h"

namespace mae::cli {

// What the CLI-only flags of a training command hold (threads, precision, the ignored official flags).
struct RunCli {
  int threads = 0;
  std::string precision = "fp32";
  std::vector<std::string> ignored;  // notes for the official flags given that do not apply
};

// Adds the shared run flags of `a` and the official no-op flags to `c`.
std::shared_ptr<RunCli> add_run_options(CLI::App* c, RunArgs& a);

// Before a run: prints the notes of the ignored flags, refuses a launch by torchrun without MPI, applies
// --threads and checks --device/--precision.
void start_run(const RunCli& r, RunArgs& a, bool trains = true);

// Thrown by a command to end mae with this status without an error message (a run stopped by a signal after
// saving: preempt::kExitPreempted).
struct ExitStatus {
  int code;
};
// Throws ExitStatus{kExitPreempted} when the run was preempted (after printing how to resume).
void exit_if_preempted(bool preempted);

}  // namespace mae::cli
