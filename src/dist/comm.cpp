#include "dist/comm.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/error.h"

#ifdef MAE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: no deprecated C++ bindings (and their warnings)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace mae::dist {

namespace {

int g_rank = 0, g_world = 1;
bool g_mpi = false;  // we called MPI_Init (and must finalize / may abort)

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end && *end == 0 && x > 0 && x < INT_MAX) ? int(x) : fallback;
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

#ifdef MAE_MPI
// MPI counts are int: big buffers go in chunks.
constexpr size_t kChunk = size_t(1) << 30;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail(what, " failed: ", std::string(msg, size_t(len)));
}

template <class T> void allreduce(T* x, size_t n, MPI_Datatype type, MPI_Op op) {
  for (size_t off = 0; off < n; off += kChunk)
    check(MPI_Allreduce(MPI_IN_PLACE, x + off, int(std::min(kChunk, n - off)), type, op, MPI_COMM_WORLD),
          "MPI_Allreduce");
}
#endif

}  // namespace

void init(int* argc, char*** argv) {
  if (launched_by_mpi()) {
#ifdef MAE_MPI
    int provided = 0;
    // Only the main thread calls MPI; loader threads never do.
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    g_mpi = true;
    // Errors in collectives come back as codes (→ mae::Error → fatal → MPI_Abort) rather than aborting silently.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    return;
#else
    const int n = env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", 1));
    if (n > 1)
      fail("started by an MPI launcher as one of ", n, " processes, but this mae was built without MPI: each would "
           "train alone and they would overwrite each other's checkpoints. Rebuild with MPI (libopenmpi-dev), or run "
           "a single process");
#endif
  }
  const int tasks = env_int("SLURM_STEP_NUM_TASKS", 1);  // set by srun for its step, not in a plain batch script
  if (tasks > 1)
    fail("SLURM started ", tasks, " tasks but no MPI process manager: run `srun --mpi=pmix mae ...` (each task "
         "would otherwise train alone as rank 0)");
}

void finalize() {
#ifdef MAE_MPI
  if (g_mpi) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
    g_mpi = false;
  }
#endif
}

bool built_with_mpi() {
#ifdef MAE_MPI
  return true;
#else
  return false;
#endif
}

bool active() { return g_mpi; }
int rank() { return g_rank; }
int world() { return g_world; }

int local_size() {
  if (g_world <= 1) return 1;
  int n = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 0);
  if (n <= 0) n = env_int("MPI_LOCALNRANKS", 0);
  if (n <= 0) {  // SLURM_TASKS_PER_NODE looks like "2(x3),1": the first count is this kind of node's
    const char* v = std::getenv("SLURM_TASKS_PER_NODE");
    if (v) n = std::atoi(v);
  }
  return std::max(1, std::min(n > 0 ? n : 1, g_world));
}

int affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

int default_threads() {
  if (g_world <= 1) return 0;
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, std::min(affinity_cpus(), hw / local_size()));
}

void allreduce_mean(float* x, size_t n) {
  if (g_world <= 1 || n == 0) return;
#ifdef MAE_MPI
  allreduce(x, n, MPI_FLOAT, MPI_SUM);
  const float inv = 1.0f / float(g_world);
  // A power-of-two world makes this exact; the order of the sum is MPI's (the same on every rank).
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
#endif
}

void allreduce_sum(double* x, size_t n) {
  if (g_world <= 1 || n == 0) return;
#ifdef MAE_MPI
  allreduce(x, n, MPI_DOUBLE, MPI_SUM);
#endif
}

void allreduce_sum(int64_t* x, size_t n) {
  if (g_world <= 1 || n == 0) return;
#ifdef MAE_MPI
  allreduce(x, n, MPI_INT64_T, MPI_SUM);
#endif
}

void allreduce_max(double* x, size_t n) {
  if (g_world <= 1 || n == 0) return;
#ifdef MAE_MPI
  allreduce(x, n, MPI_DOUBLE, MPI_MAX);
#endif
}

void broadcast(void* data, size_t bytes, int root) {
  if (g_world <= 1 || bytes == 0) return;
#ifdef MAE_MPI
  char* p = static_cast<char*>(data);
  for (size_t off = 0; off < bytes; off += kChunk)
    check(MPI_Bcast(p + off, int(std::min(kChunk, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
#endif
}

void broadcast(std::string& s, int root) {
  if (g_world <= 1) return;
  uint64_t n = s.size();
  broadcast_value(n, root);
  s.resize(size_t(n));
  broadcast(s.data(), size_t(n), root);
}

void barrier() {
  if (g_world <= 1) return;
#ifdef MAE_MPI
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void fatal(const std::string& what, int code) {
  if (g_world > 1) std::fprintf(stderr, "mae: rank %d/%d: error: %s\n", g_rank, g_world, what.c_str());
  else std::fprintf(stderr, "mae: error: %s\n", what.c_str());
  std::fflush(stderr);
#ifdef MAE_MPI
  if (g_mpi && g_world > 1) {
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, code);  // ends every rank: none is left waiting in a collective
  }
  finalize();
#endif
  std::exit(code);
}

}  // namespace mae::dist
