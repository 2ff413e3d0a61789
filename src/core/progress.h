// A progress line for long work: what, where, rate and ETA. On a terminal it rewrites one line; in a log file it
// prints a line every `every_s` seconds.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace mae {

inline std::string format_duration(double s) {
  char b[32];
  if (s < 0 || !std::isfinite(s)) return "?";
  const long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(b, sizeof b, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(b, sizeof b, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(b, sizeof b, "%lds", t);
  return b;
}

class Progress {
 public:
  explicit Progress(double every_s = 2.0) : every_s_(isatty(2) ? 0.25 : every_s) {}
  // Prints `line` if enough time has passed since the last one (or when force).
  void update(const std::string& line, bool force = false) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && std::chrono::duration<double>(now - last_).count() < every_s_) return;
    last_ = now;
    if (isatty(2)) std::fprintf(stderr, "\r\033[K%s", line.c_str());
    else std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
    pending_newline_ = isatty(2);
  }
  // Ends a rewritten terminal line so the next output starts clean.
  void done() {
    if (pending_newline_) std::fprintf(stderr, "\n");
    pending_newline_ = false;
  }

 private:
  double every_s_;
  std::chrono::steady_clock::time_point last_{};
  bool pending_newline_ = false;
};

}  // namespace mae
