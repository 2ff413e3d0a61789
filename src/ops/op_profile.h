// Wall time per op on the host backend (mae bench --profile on the CPU): while on, CpuBackend's op wrappers time
// each call (the ops are synchronous, so wall time is the op's time). Off (the default) an op pays one load and a
// branch. Ops are called from one thread (OpenMP runs inside them), so the registry needs no lock.
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace mae::prof {

struct OpTime {
  std::string op;
  double ms;
  long calls;
};

extern bool g_on;
void set_on(bool on);
void add(const char* op, double seconds);
// Per op name, largest total first; forgets the records.
std::vector<OpTime> report();

class HostScope {
 public:
  explicit HostScope(const char* op) : op_(g_on ? op : nullptr) {
    if (op_) t0_ = std::chrono::steady_clock::now();
  }
  ~HostScope() {
    if (op_) add(op_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
  }
  HostScope(const HostScope&) = delete;
  HostScope& operator=(const HostScope&) = delete;

 private:
  const char* op_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace mae::prof
