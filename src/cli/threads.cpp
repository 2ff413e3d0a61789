#include <cblas.h>
#include <omp.h>

#include "cli/common.h"
#include "core/error.h"
#include "core/limits.h"

namespace mae::cli {

void set_threads(int threads) {
  // Bounded: OpenBLAS allocates a buffer per thread and may hang when it cannot (a memory limit), not fail.
  if (threads < 0 || threads > limits::kThreads)
    fail("--threads must be in [0, ", limits::kThreads, "] (0: OMP_NUM_THREADS or all cores), got ", threads);
  if (threads == 0) return limits::check_default_threads();
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int current_threads() { return omp_get_max_threads(); }

}  // namespace mae::cli
