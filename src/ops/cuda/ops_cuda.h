// The CUDA backend's op set: the same signatures as mae::ref / mae::cpu (ops/op_decls.inc), float only, every
// pointer a DEVICE pointer (index tensors too). Plain C++: no CUDA header is needed to include this file, so the
// model and the CLI compile with g++ alone. Only built with MAE_CUDA (CMake option).
//
// Execution model: one process-wide context (lazily created on first use) owns one CUDA stream, the cuBLAS and
// cuBLASLt handles and grow-only scratch buffers. Every op is enqueued on that stream and returns without waiting,
// except the two that return a host scalar (masked_mse_forward, softmax_xent_forward), which wait for it; training
// loops use the deferred forms below instead.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "ops/adamw_segment.h"
#include "ops/device_spec.h"

namespace mae::cuda {
#include "ops/op_decls.inc"
}  // namespace mae::cuda

namespace mae::cuda {

// GEMM precision of linear_forward/linear_backward. Bf16: inputs rounded to bf16 on the fly into scratch buffers,
// cuBLASLt bf16 × bf16 with fp32 accumulation and fp32 outputs; activations, master weights, gradients, AdamW,
// LayerNorm statistics, softmax and the loss stay fp32. (Next step: store activations in bf16 too.)
using mae::Precision;  // ops/device_spec.h
void set_precision(Precision p);
Precision precision();
using PrecisionScope = PrecisionScopeOf<set_precision, precision>;  // ops/device_spec.h

// Attention core: `fused` (default) runs one kernel per (sample, head) for sequences up to 256 tokens and head
// dims up to 128, `cublas` always uses per-head strided-batched cuBLAS GEMMs and a softmax kernel. The environment
// variable MAE_CUDA_ATTENTION=cublas selects the latter at start-up.
enum class AttentionImpl { fused, cublas };
void set_attention_impl(AttentionImpl impl);
AttentionImpl attention_impl();

// Number of usable devices (0 when the driver or the device is missing; never throws).
int device_count();
// Throws mae::Error("no CUDA device found: ...") when there is none; otherwise creates the context.
void require_device();
std::string device_name();
void synchronize();
// The compute stream (a cudaStream_t), for work enqueued outside this backend (the NCCL all-reduce).
void* stream_handle();
// Bytes of device memory currently allocated through this backend (params, activations, scratch) and the peak.
size_t allocated_bytes();
size_t peak_allocated_bytes();

// Device memory (what CudaMemory in backend_cuda.h forwards to). alloc is zero-filled.
void* alloc_bytes(size_t bytes);
void free_bytes(void* p);
void zero_bytes(void* p, size_t bytes);
// host → device, ordered on the compute stream; the host buffer may be reused at once. Copies up to 1 MiB (the
// per-step mask ids, drop-path scales) are staged in a ring of pinned buffers and do not wait for the GPU; larger
// ones (parameters, checkpoints) wait for the copy.
void upload_bytes(void* dst, const void* src, size_t bytes);
void download_bytes(void* dst, const void* src, size_t bytes);  // device → host, synchronous

// Pinned (page-locked) host memory, for per-step uploads that can overlap with compute.
void* alloc_pinned(size_t bytes);
void free_pinned(void* p);

// ---- no host synchronisation inside a training step ----
// Batch upload overlapped with compute: the host batch is copied into pinned memory and sent to a device staging
// buffer on a second (copy) stream, which runs while the compute stream is still busy with the previous step's
// backward and optimizer; the compute stream waits for that copy and moves the batch into `dst` (device to device,
// ~0.1 ms for a ViT-B batch), so `dst` is one fixed buffer (CUDA graphs keep its address). The host waits only
// for the previous copy out of the pinned buffer, long done.
void* uploader_create();
void uploader_destroy(void* u);
void uploader_put(void* u, void* dst, const void* host, size_t bytes);

// Deferred readback of reductions: *_enqueue computes on the stream into `slot` and starts copying the (a, b) result
// to pinned host memory behind an event; read_deferred(slot) waits for that copy only. So a training step enqueues
// forward, backward and the optimizer, and only then waits for its loss and gradient norm while the GPU runs on.
enum DeferredSlot : int { kSlotLoss = 0, kSlotGradNorm, kSlotSyncA, kSlotSyncB, kDeferredSlots };
struct DeferredPair {
  double a, b;
};
// a = Σ_{b,l} mask · mean_p (pred − target)², b = Σ mask (the masked MSE is a / b; see masked_mse_forward).
void masked_mse_enqueue(int slot, const float* pred, const float* target, const float* mask, int B, int L, int P);
// a = Σ g² (double accumulation, fixed order), b = 0.
void sum_squares_enqueue(int slot, const float* g, size_t n);
DeferredPair read_deferred(int slot);

// ---- CUDA graphs: a training step's device work captured once and replayed (fixed shapes and pointers) ----
// graph_begin() starts capturing the compute stream (thread-local mode: other threads are unaffected); nothing runs
// until graph_launch. graph_end() returns the instantiated graph. Uploads are refused while capturing (their staging
// address changes every call); deferred readbacks captured inside get their event recorded by graph_launch.
void graph_begin();
void* graph_end();
// false (nothing launched) when a scratch buffer the graph captured has been reallocated since: capture again.
bool graph_launch(void* graph);
void graph_destroy(void* graph);
void graph_abort();  // ends a capture that failed half-way (errors ignored), so the stream works again
bool capturing();

// ---- per-op GPU time (mae bench --profile) ----
// While profiling is on, every op the model calls through CudaBackend records a start and an end event on the stream
// around its kernels (OpScope); profile_report() synchronises and returns the GPU time per op name, largest first,
// and forgets the records. Off (the default) an op pays one function call.
void set_profiling(bool on);
bool profiling();
int profile_begin(const char* op);  // returns the record's index
void profile_end(int record) noexcept;
struct OpTime {
  std::string op;
  double ms;
  long calls;
};
std::vector<OpTime> profile_report();
class OpScope {
 public:
  explicit OpScope(const char* op) : rec_(profiling() ? profile_begin(op) : -1) {}
  ~OpScope() {
    if (rec_ >= 0) profile_end(rec_);
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  int rec_;
};

// AdamW over the whole flat buffer in ONE kernel: `segments` (offset, numel, decay?) from the ParamList, cached on
// the device per list. Same per-element arithmetic as adamw_update.
using mae::AdamWSegment;
void adamw_flat(float* p, float* m, float* v, const float* g, const AdamWSegment* segs, int nsegs, const void* key,
                float lr, float beta1, float beta2, float eps, float wd, long t);

// Σ g² over n elements (double accumulation): sum_squares_enqueue + read_deferred.
double sum_squares(const float* g, size_t n);

}  // namespace mae::cuda
