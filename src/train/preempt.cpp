#include "train/preempt.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

#include "io/atomic_file.h"

namespace mae::preempt {

namespace {

constexpr int kSignals[] = {SIGTERM, SIGINT, SIGUSR1};
volatile sig_atomic_t g_signal = 0;
struct sigaction g_old[3];

// Async-signal-safe only: write, unlink, _exit.
void on_signal(int sig) {
  if (g_signal != 0) {
    if (const char* tmp = io::temp_file_in_progress()) ::unlink(tmp);
    static const char msg[] = "\nmae: second signal: exiting now (the last checkpoint is kept as it was)\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(128 + sig);
  }
  g_signal = sig;
  static const char msg[] = "\nmae: signal received: finishing the step, saving checkpoint-last, then exiting "
                            "(a second signal exits at once)\n";
  (void)!::write(2, msg, sizeof msg - 1);
}

}  // namespace

Guard::Guard() {
  // g_signal is not reset: a signal that came while an outer guard was in place (cli start_run installs one for the
  // whole command) still counts for the run.
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a read interrupted by the signal goes on: the loop checks the flag between steps
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_old[i]);
}

Guard::~Guard() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_old[i], nullptr);
}

int requested() { return g_signal; }

}  // namespace mae::preempt
