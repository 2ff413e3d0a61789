// The CUDA context and backend plumbing: stream, cuBLAS/cuBLASLt handles, scratch, device and pinned memory,
// uploads, the precision switch, deferred readbacks, CUDA graphs, per-op profiling; and the small reductions and
// conversions several op files share (common.cuh: colsum's second stage, bf16 operand copies, sum2, the sum of
// squares behind the gradient norm).
#include <cstdlib>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
std::mutex g_mu;
std::unordered_map<void*, size_t> g_sizes;
size_t g_now = 0, g_peak = 0;
Precision g_prec = Precision::fp32;

std::string no_device_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return cudaGetErrorString(e);
  if (n == 0) return "cudaGetDeviceCount returned 0";
  return "";
}
}  // namespace

Context& ctx() {
  static Context* c = [] {
    const std::string why = no_device_reason();
    if (!why.empty()) fail("no CUDA device found (", why, ")");
    auto* x = new Context;
    // One GPU per rank: the launcher's local rank picks the device (mpirun / srun / torchrun-style variables).
    for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"}) {
      if (const char* v = std::getenv(var)) {
        int n = 0;
        MAE_CUDA_CHECK(cudaGetDeviceCount(&n));
        MAE_CUDA_CHECK(cudaSetDevice(std::atoi(v) % n));
        break;
      }
    }
    MAE_CUDA_CHECK(cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking));
    MAE_CUBLAS_CHECK(cublasCreate(&x->blas));
    MAE_CUBLAS_CHECK(cublasSetStream(x->blas, x->stream));
    // Exact fp32 GEMMs unless the bf16 path is asked for: no TF32 (tests compare to the CPU at 1e-5).
    MAE_CUBLAS_CHECK(cublasSetMathMode(x->blas, CUBLAS_DEFAULT_MATH));
    MAE_CUBLAS_CHECK(cublasLtCreate(&x->lt));
    x->lt_ws_bytes = size_t(32) << 20;
    MAE_CUDA_CHECK(cudaMalloc(&x->lt_ws, x->lt_ws_bytes));
    MAE_CUBLAS_CHECK(cublasSetWorkspace(x->blas, x->lt_ws, x->lt_ws_bytes));
    int dev = 0;
    MAE_CUDA_CHECK(cudaGetDevice(&dev));
    MAE_CUDA_CHECK(cudaDeviceGetAttribute(&x->sm_count, cudaDevAttrMultiProcessorCount, dev));
    x->prec = g_prec;
    return x;
  }();
  return *c;
}

void* Context::get(Scratch s, size_t bytes) {
  if (bytes > scratch_bytes[s]) {
    if (capturing()) fail("CUDA: scratch buffer ", int(s), " cannot grow inside a CUDA graph capture");
    if (scratch[s]) {
      MAE_CUDA_CHECK(cudaStreamSynchronize(stream));
      MAE_CUDA_CHECK(cudaFree(scratch[s]));
    }
    const size_t want = bytes + bytes / 4 + 256;
    MAE_CUDA_CHECK(cudaMalloc(&scratch[s], want));
    scratch_bytes[s] = want;
    ++generation;
  }
  return scratch[s];
}

void set_precision(Precision p) {
  g_prec = p;
  if (device_count() > 0) ctx().prec = p;
}
Precision precision() { return g_prec; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of a missing driver
    return 0;
  }
  return n;
}
void require_device() { ctx(); }
std::string device_name() {
  ctx();
  int dev = 0;
  MAE_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  MAE_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  return p.name;
}
void synchronize() { MAE_CUDA_CHECK(cudaStreamSynchronize(ctx().stream)); }
void* stream_handle() { return ctx().stream; }

size_t allocated_bytes() {
  std::lock_guard<std::mutex> l(g_mu);
  return g_now;
}
size_t peak_allocated_bytes() {
  std::lock_guard<std::mutex> l(g_mu);
  return g_peak;
}

void* alloc_bytes(size_t bytes) {
  Context& c = ctx();
  void* p = nullptr;
  const size_t n = bytes ? bytes : 1;
  const cudaError_t e = cudaMalloc(&p, n);
  if (e != cudaSuccess) fail("CUDA: cannot allocate ", n, " bytes of device memory: ", cudaGetErrorString(e));
  MAE_CUDA_CHECK(cudaMemsetAsync(p, 0, n, c.stream));
  MAE_CUDA_CHECK(cudaStreamSynchronize(c.stream));
  std::lock_guard<std::mutex> l(g_mu);
  g_sizes[p] = n;
  g_now += n;
  if (g_now > g_peak) g_peak = g_now;
  return p;
}
void free_bytes(void* p) {
  if (!p) return;
  Context& c = ctx();
  cudaStreamSynchronize(c.stream);
  cudaFree(p);  // no throw: called from destructors
  std::lock_guard<std::mutex> l(g_mu);
  auto it = g_sizes.find(p);
  if (it != g_sizes.end()) {
    g_now -= it->second;
    g_sizes.erase(it);
  }
}
void zero_bytes(void* p, size_t bytes) {
  if (bytes) MAE_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ctx().stream));
}
namespace {
// Pinned staging ring for small uploads: the host data is copied into a slot, the H→D copy is enqueued and an event
// marks it; a slot is refilled only once its event has fired (kSlots uploads later, in practice long done).
struct StagingRing {
  static constexpr int kSlots = 16;
  static constexpr size_t kSlotBytes = size_t(1) << 20;
  char* host = nullptr;
  cudaEvent_t ev[kSlots] = {};
  bool used[kSlots] = {};
  int next = 0;
};
std::mutex g_ring_mu;
StagingRing& ring() {
  static StagingRing* r = [] {
    auto* x = new StagingRing;
    MAE_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&x->host), StagingRing::kSlots * StagingRing::kSlotBytes,
                                 cudaHostAllocDefault));
    for (auto& e : x->ev) MAE_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return x;
  }();
  return *r;
}
}  // namespace

void upload_bytes(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  Context& c = ctx();
  if (capturing()) fail("CUDA: an upload inside a CUDA graph capture (uploads belong before the captured step)");
  if (bytes <= StagingRing::kSlotBytes) {
    std::lock_guard<std::mutex> l(g_ring_mu);
    StagingRing& r = ring();
    const int k = r.next;
    r.next = (k + 1) % StagingRing::kSlots;
    if (r.used[k]) MAE_CUDA_CHECK(cudaEventSynchronize(r.ev[k]));
    char* slot = r.host + size_t(k) * StagingRing::kSlotBytes;
    std::memcpy(slot, src, bytes);
    MAE_CUDA_CHECK(cudaMemcpyAsync(dst, slot, bytes, cudaMemcpyHostToDevice, c.stream));
    MAE_CUDA_CHECK(cudaEventRecord(r.ev[k], c.stream));
    r.used[k] = true;
    return;
  }
  MAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c.stream));
  MAE_CUDA_CHECK(cudaStreamSynchronize(c.stream));  // the caller may reuse the host buffer at once
}
void download_bytes(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  Context& c = ctx();
  MAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c.stream));
  MAE_CUDA_CHECK(cudaStreamSynchronize(c.stream));
}
void* alloc_pinned(size_t bytes) {
  ctx();
  void* p = nullptr;
  MAE_CUDA_CHECK(cudaMallocHost(&p, bytes ? bytes : 1));
  return p;
}
void free_pinned(void* p) {
  if (p) cudaFreeHost(p);
}

namespace {
struct Uploader {
  size_t cap = 0;
  void* pinned = nullptr;   // host side of the copy
  void* staging = nullptr;  // device side, moved into the caller's buffer by the compute stream
  cudaEvent_t h2d_done = nullptr, d2d_done = nullptr;
  bool used = false;
};
cudaStream_t copy_stream() {
  static cudaStream_t s = [] {
    ctx();
    cudaStream_t x = nullptr;
    MAE_CUDA_CHECK(cudaStreamCreateWithFlags(&x, cudaStreamNonBlocking));
    return x;
  }();
  return s;
}
}  // namespace
void* uploader_create() {
  ctx();
  auto* u = new Uploader;
  MAE_CUDA_CHECK(cudaEventCreateWithFlags(&u->h2d_done, cudaEventDisableTiming));
  MAE_CUDA_CHECK(cudaEventCreateWithFlags(&u->d2d_done, cudaEventDisableTiming));
  return u;
}
void uploader_destroy(void* p) {
  if (!p) return;
  auto* u = static_cast<Uploader*>(p);
  cudaStreamSynchronize(copy_stream());  // no throw: called from destructors
  free_bytes(u->staging);                // synchronises the compute stream
  free_pinned(u->pinned);
  cudaEventDestroy(u->h2d_done);
  cudaEventDestroy(u->d2d_done);
  delete u;
}
void uploader_put(void* p, void* dst, const void* host, size_t bytes) {
  if (!bytes) return;
  auto* u = static_cast<Uploader*>(p);
  Context& c = ctx();
  const cudaStream_t cs = copy_stream();
  if (bytes > u->cap) {  // first batch (or a larger one): both streams idle before the buffers change
    MAE_CUDA_CHECK(cudaStreamSynchronize(cs));
    free_bytes(u->staging);
    free_pinned(u->pinned);
    u->pinned = alloc_pinned(bytes);
    u->staging = alloc_bytes(bytes);
    u->cap = bytes;
    u->used = false;
  }
  if (u->used) MAE_CUDA_CHECK(cudaEventSynchronize(u->h2d_done));  // the pinned buffer's last copy is done
  std::memcpy(u->pinned, host, bytes);
  if (u->used) MAE_CUDA_CHECK(cudaStreamWaitEvent(cs, u->d2d_done, 0));  // the staging buffer was moved out
  MAE_CUDA_CHECK(cudaMemcpyAsync(u->staging, u->pinned, bytes, cudaMemcpyHostToDevice, cs));
  MAE_CUDA_CHECK(cudaEventRecord(u->h2d_done, cs));
  MAE_CUDA_CHECK(cudaStreamWaitEvent(c.stream, u->h2d_done, 0));
  MAE_CUDA_CHECK(cudaMemcpyAsync(dst, u->staging, bytes, cudaMemcpyDeviceToDevice, c.stream));
  MAE_CUDA_CHECK(cudaEventRecord(u->d2d_done, c.stream));
  u->used = true;
}

// Profiler records: events with timing, pooled across reports.
namespace {
struct ProfRecord {
  const char* op;
  cudaEvent_t start, end;
};
bool g_profiling = false;
std::vector<ProfRecord> g_records;
std::vector<cudaEvent_t> g_event_pool;
cudaEvent_t timing_event() {
  if (!g_event_pool.empty()) {
    cudaEvent_t e = g_event_pool.back();
    g_event_pool.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  MAE_CUDA_CHECK(cudaEventCreate(&e));
  return e;
}
}  // namespace
void set_profiling(bool on) { g_profiling = on; }
bool profiling() { return g_profiling; }
int profile_begin(const char* op) {
  Context& c = ctx();
  ProfRecord r{op, timing_event(), nullptr};
  MAE_CUDA_CHECK(cudaEventRecord(r.start, c.stream));
  g_records.push_back(r);
  return int(g_records.size()) - 1;
}
void profile_end(int record) noexcept {  // from a destructor: never throws (a failed record is left without an end)
  ProfRecord& r = g_records[size_t(record)];
  cudaEvent_t e = nullptr;
  if (!g_event_pool.empty()) {
    e = g_event_pool.back();
    g_event_pool.pop_back();
  } else if (cudaEventCreate(&e) != cudaSuccess) {
    return;
  }
  if (cudaEventRecord(e, ctx().stream) != cudaSuccess) {
    g_event_pool.push_back(e);
    return;
  }
  r.end = e;
}
std::vector<OpTime> profile_report() {
  synchronize();
  std::map<std::string, OpTime> by_op;
  for (ProfRecord& r : g_records) {
    if (r.end) {  // a record whose end event failed has none
      float ms = 0;
      MAE_CUDA_CHECK(cudaEventElapsedTime(&ms, r.start, r.end));
      OpTime& t = by_op[r.op];
      t.op = r.op;
      t.ms += ms;
      ++t.calls;
      g_event_pool.push_back(r.end);
    }
    g_event_pool.push_back(r.start);
  }
  g_records.clear();
  std::vector<OpTime> out;
  for (auto& [k, t] : by_op) out.push_back(t);
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
  return out;
}

// Deferred slots: two doubles on the device, their pinned host copy and the event behind the copy.
namespace {
struct Deferred {
  double* dev = nullptr;
  double* host = nullptr;
  cudaEvent_t ev = nullptr;
  bool pending = false;
  bool captured = false;  // its copy was captured into the graph being built: graph_launch records the event
};
Deferred& deferred(int slot) {
  MAE_CHECK(slot >= 0 && slot < kDeferredSlots, "deferred slot ", slot);
  static Deferred* d = [] {
    ctx();
    auto* x = new Deferred[kDeferredSlots];
    for (int i = 0; i < kDeferredSlots; ++i) {
      MAE_CUDA_CHECK(cudaMalloc(&x[i].dev, 2 * sizeof(double)));
      MAE_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&x[i].host), 2 * sizeof(double), cudaHostAllocDefault));
      MAE_CUDA_CHECK(cudaEventCreateWithFlags(&x[i].ev, cudaEventDisableTiming));
    }
    return x;
  }();
  return d[slot];
}
}  // namespace
double* deferred_dev(int slot) { return deferred(slot).dev; }
void deferred_copy(int slot) {
  Deferred& d = deferred(slot);
  Context& c = ctx();
  MAE_CUDA_CHECK(cudaMemcpyAsync(d.host, d.dev, 2 * sizeof(double), cudaMemcpyDeviceToHost, c.stream));
  if (capturing()) {  // an event recorded inside a capture is not one the host can wait for
    d.captured = true;
    return;
  }
  MAE_CUDA_CHECK(cudaEventRecord(d.ev, c.stream));
  d.pending = true;
}
bool capturing() {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  MAE_CUDA_CHECK(cudaStreamIsCapturing(ctx().stream, &st));
  return st == cudaStreamCaptureStatusActive;
}

namespace {
struct Graph {
  cudaGraphExec_t exec = nullptr;
  std::vector<int> slots;  // deferred slots whose copy is inside
  unsigned long generation = 0;  // of the scratch buffers it captured
};
}  // namespace
void graph_begin() { MAE_CUDA_CHECK(cudaStreamBeginCapture(ctx().stream, cudaStreamCaptureModeThreadLocal)); }
void* graph_end() {
  cudaGraph_t g = nullptr;
  const cudaError_t ec = cudaStreamEndCapture(ctx().stream, &g);
  if (ec != cudaSuccess) {
    for (int i = 0; i < kDeferredSlots; ++i) deferred(i).captured = false;
    fail("CUDA graph capture failed: ", cudaGetErrorString(ec));
  }
  auto* G = new Graph;
  const cudaError_t e = cudaGraphInstantiate(&G->exec, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess) {
    delete G;
    for (int i = 0; i < kDeferredSlots; ++i) deferred(i).captured = false;
    fail("CUDA graph instantiation failed: ", cudaGetErrorString(e));
  }
  for (int i = 0; i < kDeferredSlots; ++i)
    if (deferred(i).captured) G->slots.push_back(i), deferred(i).captured = false;
  G->generation = ctx().generation;
  return G;
}
bool graph_launch(void* graph) {
  auto* G = static_cast<Graph*>(graph);
  Context& c = ctx();
  if (G->generation != c.generation) return false;  // a scratch buffer it reads or writes has moved since
  MAE_CUDA_CHECK(cudaGraphLaunch(G->exec, c.stream));
  for (int i : G->slots) {
    MAE_CUDA_CHECK(cudaEventRecord(deferred(i).ev, c.stream));
    deferred(i).pending = true;
  }
  return true;
}
void graph_abort() {
  cudaGraph_t g = nullptr;
  if (cudaStreamEndCapture(ctx().stream, &g) == cudaSuccess && g) cudaGraphDestroy(g);
  cudaGetLastError();  // clear the capture's error
  for (int i = 0; i < kDeferredSlots; ++i) deferred(i).captured = false;
}
void graph_destroy(void* graph) {
  if (!graph) return;
  auto* G = static_cast<Graph*>(graph);
  cudaGraphExecDestroy(G->exec);  // no throw: called from destructors
  delete G;
}

DeferredPair read_deferred(int slot) {
  Deferred& d = deferred(slot);
  MAE_CHECK(d.pending, "read_deferred: nothing was enqueued into slot ", slot);
  MAE_CUDA_CHECK(cudaEventSynchronize(d.ev));
  return {d.host[0], d.host[1]};
}

__global__ void colsum_finish_kernel(float* out, const float* part, int slices, int C, bool accumulate) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.f;
  for (int i = 0; i < slices; ++i) s += part[size_t(i) * C + c];
  out[c] = accumulate ? out[c] + s : s;
}

// ---- small reductions and conversions shared by the op files (common.cuh) ----
namespace {
__global__ void to_bf16_kernel(__nv_bfloat16* out, const float* in, size_t n) {
  MAE_GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(in[i]);
}

// One block: out[0] = Σ a, out[1] = Σ b (doubles, fixed order per thread then a tree).
__global__ void sum2_kernel(double* out, const float* a, const float* b, size_t n) {
  double sa = 0, sb = 0;
  for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
    sa += a[i];
    if (b) sb += b[i];
  }
  __shared__ double sh[2][32];
  sa = warp_sum_d(sa);
  sb = warp_sum_d(sb);
  if ((threadIdx.x & 31) == 0) sh[0][threadIdx.x >> 5] = sa, sh[1][threadIdx.x >> 5] = sb;
  __syncthreads();
  if (threadIdx.x < 32) {
    const bool in = threadIdx.x < (blockDim.x >> 5);
    double x = in ? sh[0][threadIdx.x] : 0.0, y = in ? sh[1][threadIdx.x] : 0.0;
    x = warp_sum_d(x);
    y = warp_sum_d(y);
    if (threadIdx.x == 0) out[0] = x, out[1] = y;
  }
}

__global__ void sum_squares_kernel(double* out, const float* g, size_t n) {
  double s = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    s += double(g[i]) * g[i];
  __shared__ double sh[32];
  s = warp_sum_d(s);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x < 32) {
    double t = threadIdx.x < (blockDim.x >> 5) ? sh[threadIdx.x] : 0.0;
    t = warp_sum_d(t);
    if (threadIdx.x == 0) out[blockIdx.x] = t;
  }
}
// One warp: out[0] = Σ part (each lane a fixed stride, then the warp tree: the same order every run), out[1] = 0.
__global__ void sum_partials_kernel(double* out, const double* part, int n) {
  double s = 0;
  for (int i = threadIdx.x; i < n; i += 32) s += part[i];
  s = warp_sum_d(s);
  if (threadIdx.x == 0) out[0] = s, out[1] = 0;
}
}  // namespace

__nv_bfloat16* to_bf16(Scratch slot, const float* in, size_t n) {
  Context& c = ctx();
  auto* out = static_cast<__nv_bfloat16*>(c.get(slot, n * sizeof(__nv_bfloat16) + 16));
  to_bf16_kernel<<<blocks_for(n, 256, c.sm_count * 16), 256, 0, c.stream>>>(out, in, n);
  MAE_CUDA_LAUNCHED();
  return out;
}

void sum2(double* out, const float* a, const float* b, size_t n) {
  sum2_kernel<<<1, 1024, 0, ctx().stream>>>(out, a, b, n);
  MAE_CUDA_LAUNCHED();
}

void sum_squares_enqueue(int slot, const float* g, size_t n) {
  Context& c = ctx();
  const int grid = std::max(1, std::min(blocks_for(n, 256), c.sm_count * 4));
  double* part = static_cast<double*>(c.get(kScalars, sizeof(double) * grid));
  sum_squares_kernel<<<grid, 256, 0, c.stream>>>(part, g, n);
  MAE_CUDA_LAUNCHED();
  sum_partials_kernel<<<1, 32, 0, c.stream>>>(deferred_dev(slot), part, grid);
  MAE_CUDA_LAUNCHED();
  deferred_copy(slot);
}

double sum_squares(const float* g, size_t n) {
  sum_squares_enqueue(kSlotSyncB, g, n);
  return read_deferred(kSlotSyncB).a;
}

}  // namespace mae::cuda
