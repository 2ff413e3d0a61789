// Process group for data-parallel training: MPI when the binary was built with it (MAE_MPI) and launched by an MPI
// launcher (mpirun / srun --mpi=pmix); otherwise a group of one, where every call below is a no-op or the identity.
//
// The training loops use it the same way in every subcommand:
//   - every rank reads a disjoint slice of each global batch (LoaderConfig.rank/world);
//   - after backward, grads are averaged with one allreduce_mean over the flat gradient buffer (no bucketing and no
//     overlap with backward: one blocking MPI_Allreduce per optimizer step);
//   - parameters and optimizer state are broadcast from rank 0 after init / resume, so all ranks start identical;
//   - rank 0 alone prints progress and writes logs and checkpoints.
// Failure: an exception on any rank ends in fatal() (rank-prefixed message, then MPI_Abort of the whole job), so a
// rank that sees bad input never leaves the others waiting in a collective. A rank killed by a signal makes mpirun /
// srun terminate the rest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mae::dist {

// Call once at the start of main. Initialises MPI only when launched by an MPI launcher (OMPI_COMM_WORLD_SIZE,
// PMIX_RANK or PMI_RANK in the environment), so a plain `mae ...` never pays for MPI start-up. Throws mae::Error if
// SLURM started several tasks but no MPI process manager (srun without --mpi=pmix): they would all act as rank 0.
void init(int* argc, char*** argv);
void finalize();  // at a normal exit (no-op without MPI)

bool built_with_mpi();  // compiled with MAE_MPI
bool active();          // MPI initialised with world() > 1 possible
int rank();
int world();
int local_size();  // ranks on this node (OMPI_COMM_WORLD_LOCAL_SIZE / SLURM_NTASKS_PER_NODE; 1 when unknown)
inline bool is_root() { return rank() == 0; }

// Compute threads a rank should use when the user gave none: the CPUs it may run on, shared by the ranks of its
// node. 0 = leave the OpenMP default (single process).
int default_threads();
// The number of CPUs this process may run on (its affinity mask): 1 when mpirun bound it to one core.
int affinity_cpus();

// In place, over all ranks: x ← (Σ_r x_r) / world. The gradient rule: each rank holds ∂(its mean loss)/∂θ, and the
// mean over ranks is ∂(mean loss over the global batch)/∂θ when every rank has the same number of samples.
void allreduce_mean(float* x, size_t n);
void allreduce_sum(double* x, size_t n);
void allreduce_sum(int64_t* x, size_t n);
void allreduce_max(double* x, size_t n);
void broadcast(void* data, size_t bytes, int root = 0);
void broadcast(std::string& s, int root = 0);
template <class T> void broadcast_value(T& v, int root = 0) { broadcast(&v, sizeof(T), root); }
void barrier();

// Prints "mae: rank r/N: error: what" (or "mae: error: what" alone) and ends the job: MPI_Abort on every rank when
// the group has more than one, exit(code) otherwise.
[[noreturn]] void fatal(const std::string& what, int code = 1);

// ---- NCCL hook (GPU builds) ----
// With MAE_CUDA && MAE_NCCL, a CUDA build averages device gradients with ncclAllReduce on a communicator made from an
// ncclUniqueId that rank 0 broadcasts over MPI (ncclCommInitRank), enqueued on the compute stream (no host round
// trip; one all-reduce per step, not yet bucketed under backward). Implemented in src/ops/cuda/nccl_comm.cpp;
// compiled here, not yet run (no GPU has been lent). Device selection: src/ops/cuda/context.cu (local rank).
#if defined(MAE_CUDA) && defined(MAE_NCCL)
struct NcclComm;
NcclComm* nccl_init(int device);                                                  // collective over all ranks
void nccl_allreduce_mean(NcclComm* c, float* device_ptr, size_t n, void* stream);  // cudaStream_t as void*
void nccl_destroy(NcclComm* c);
#endif

}  // namespace mae::dist
