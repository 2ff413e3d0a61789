#include "ops/cpu/row_tiles.h"

#include <omp.h>

#include <atomic>

#include "ops/cpu/precision.h"
#include "ops/op_profile.h"

namespace mae::cpu {

namespace {
std::atomic<bool> g_row_tiles{true};
}

int row_tile_threads() {
  if (!g_row_tiles.load(std::memory_order_relaxed) || precision() != Precision::fp32 || prof::g_on ||
      omp_in_parallel())
    return 1;
  return omp_get_max_threads();
}

void set_row_tiles(bool on) { g_row_tiles.store(on, std::memory_order_relaxed); }

}  // namespace mae::cpu
