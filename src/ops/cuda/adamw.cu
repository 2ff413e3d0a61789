// AdamW on the GPU (torch.optim.AdamW semantics): per tensor (adamw_update) and over the whole flat parameter
// buffer in one kernel (adamw_flat: a segment table built from the ParamList, per-segment weight decay). Both run
// the same per-element arithmetic (adamw_element), that of cpu::adamw_update.
#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <vector>

#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
// The per-step scalars, computed in double as torch computes them in Python (the same as cpu::adamw_update).
struct Step {
  float decay, b1, b2, omb1, omb2, step_size, bc2_sqrt, eps;
};
Step make_step(float lr, float beta1, float beta2, float eps, float wd, long t) {
  MAE_CHECK(t >= 1, "adamw step count t = ", t);
  return {float(1.0 - double(lr) * double(wd)),
          beta1,
          beta2,
          float(1.0 - double(beta1)),
          float(1.0 - double(beta2)),
          float(double(lr) / (1.0 - std::pow(double(beta1), double(t)))),
          float(std::sqrt(1.0 - std::pow(double(beta2), double(t)))),
          eps};
}

// One AdamW element (decay: the step's, or 1 for a tensor without weight decay).
__device__ __forceinline__ void adamw_element(float* p, float* m, float* v, const float* g, size_t i, float decay,
                                              const Step& s) {
  const float gi = g[i];
  const float mi = m[i] * s.b1 + gi * s.omb1;
  const float vi = v[i] * s.b2 + gi * gi * s.omb2;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] * decay - s.step_size * (mi / (sqrtf(vi) / s.bc2_sqrt + s.eps));
}

__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, size_t n, Step s) {
  MAE_GRID_STRIDE(i, n) adamw_element(p, m, v, g, i, s.decay, s);
}

// ---- over the flat buffer: one launch, a grid-stride loop per segment chunk ----
struct Chunk {
  size_t offset;
  unsigned count;
  unsigned decay;
};
constexpr unsigned kChunk = 8192;

__global__ void adamw_flat_kernel(float* p, float* m, float* v, const float* g, const Chunk* chunks, int nchunks,
                                  Step s) {
  for (int ci = blockIdx.x; ci < nchunks; ci += gridDim.x) {
    const Chunk ch = chunks[ci];
    const float decay = ch.decay ? s.decay : 1.0f;
    for (unsigned j = threadIdx.x; j < ch.count; j += blockDim.x) adamw_element(p, m, v, g, ch.offset + j, decay, s);
  }
}

struct FlatCache {
  std::vector<AdamWSegment> segs;
  int nchunks = 0;
};
std::unordered_map<const void*, FlatCache> g_flat;
}  // namespace

template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, size_t n, float lr, float beta1, float beta2, float eps, float wd,
                  long t) {
  const Step step = make_step(lr, beta1, beta2, eps, wd, t);
  MAE_LAUNCH(adamw_kernel, n, p, m, v, g, n, step);
}

void adamw_flat(float* p, float* m, float* v, const float* g, const AdamWSegment* segs, int nsegs, const void* key,
                float lr, float beta1, float beta2, float eps, float wd, long t) {
  const Step step = make_step(lr, beta1, beta2, eps, wd, t);
  Context& c = ctx();
  FlatCache& fc = g_flat[key];
  bool same = int(fc.segs.size()) == nsegs;
  for (int i = 0; same && i < nsegs; ++i)
    same = fc.segs[i].offset == segs[i].offset && fc.segs[i].numel == segs[i].numel && fc.segs[i].decay == segs[i].decay;
  if (!same) {  // (re)build the chunk table: each segment cut into chunks of kChunk elements
    std::vector<Chunk> host;
    for (int i = 0; i < nsegs; ++i)
      for (size_t o = 0; o < segs[i].numel; o += kChunk)
        host.push_back({segs[i].offset + o, unsigned(std::min<size_t>(kChunk, segs[i].numel - o)),
                        unsigned(segs[i].decay)});
    fc.segs.assign(segs, segs + nsegs);
    fc.nchunks = int(host.size());
    // The table lives in the kAdamW slot: one cached list at a time is enough (one model per process).
    void* d = c.get(kAdamW, host.size() * sizeof(Chunk) + 16);
    upload_bytes(d, host.data(), host.size() * sizeof(Chunk));
    for (auto& [k, other] : g_flat)
      if (k != key) other.segs.clear();  // their table was overwritten
  }
  if (fc.nchunks == 0) return;
  const int grid = std::min(fc.nchunks, c.sm_count * 8);
  adamw_flat_kernel<<<grid, 256, 0, c.stream>>>(p, m, v, g, static_cast<const Chunk*>(c.scratch[kAdamW]), fc.nchunks,
                                                 step);
  MAE_CUDA_LAUNCHED();
}

template void adamw_update<float>(float*, float*, float*, const float*, size_t, float, float, float, float, float,
                                  long);

}  // namespace mae::cuda
