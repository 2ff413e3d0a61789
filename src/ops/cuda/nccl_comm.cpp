// NCCL all-reduce of device gradients for data-parallel CUDA runs (declared in dist/comm.h). MPI only starts it:
// rank 0's ncclUniqueId is broadcast over MPI, then every rank joins one communicator on its own GPU.
#if defined(MAE_NCCL)
#include <cuda_runtime.h>
#include <nccl.h>

#include "core/error.h"
#include "dist/comm.h"

namespace mae::dist {

namespace {
void nccl_check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) fail("NCCL ", what, ": ", ncclGetErrorString(r));
}
}  // namespace

struct NcclComm {
  ncclComm_t comm;
};

NcclComm* nccl_init(int /*device: already selected by the CUDA context from the local rank*/) {
  ncclUniqueId id{};
  if (is_root()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  broadcast(&id, sizeof id);
  auto* c = new NcclComm;
  nccl_check(ncclCommInitRank(&c->comm, world(), id, rank()), "ncclCommInitRank");
  return c;
}

// ncclAvg (NCCL ≥ 2.10) divides by the rank count inside the collective: x ← Σ_r x_r / world, as allreduce_mean.
void nccl_allreduce_mean(NcclComm* c, float* device_ptr, size_t n, void* stream) {
  nccl_check(ncclAllReduce(device_ptr, device_ptr, n, ncclFloat, ncclAvg, c->comm, static_cast<cudaStream_t>(stream)),
             "ncclAllReduce");
}

void nccl_destroy(NcclComm* c) {
  if (!c) return;
  ncclCommDestroy(c->comm);
  delete c;
}

}  // namespace mae::dist
#endif
