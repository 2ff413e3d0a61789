#include <cblas.h>
#include <omp.h>

#include "cli/common.h"
#include "core/error.h"

namespace mae::cli {

void set_threads(int threads) {
  if (threads < 0) fail("--threads must be ≥ 0, got ", threads);
  if (threads == 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int current_threads() { return omp_get_max_threads(); }

}  // namespace mae::cli
