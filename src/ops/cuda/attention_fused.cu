// Fused attention core for short sequences (ViT-B/16 MAE: 50 encoder tokens, 197 decoder tokens): one thread block
// per (sample, head), K and V (backward: also Q and dout) staged in shared memory, one warp per query row holding
// its scores in registers (lane l owns keys l, l+32, ...). Scores, softmax and att·v in one kernel instead of
// 2·H cuBLAS calls and a softmax launch; the probabilities are still written out (attention_backward needs them).
// fp32 throughout, same arithmetic as the CPU op (scale applied to q·k, softmax with max subtraction).
#include "ops/cuda/attention_fused.h"

#include <cstdlib>
#include <cstring>

#include "ops/cuda/common.cuh"

namespace mae::cuda {

namespace {
constexpr int kWarps = 8;
constexpr int kMaxHdChunks = kFusedMaxHeadDim / 32;  // dims per lane in the att·v and dq products

size_t fused_smem_bytes(int Tn, int hd) { return sizeof(float) * (2 * size_t(Tn) * (hd + 1) + size_t(kWarps) * hd); }

// Rows of one (b, h) slice of a (B, Tn, ld) tensor at column offset `col` → shared (Tn, hd+1) (padded: lanes reading
// different rows at the same d hit different banks).
__device__ void stage(float* s, const float* base, size_t ld, int Tn, int hd) {
  for (int idx = threadIdx.x; idx < Tn * hd; idx += blockDim.x) {
    const int j = idx / hd, d = idx % hd;
    s[j * (hd + 1) + d] = base[size_t(j) * ld + d];
  }
}

template <int JT>
__global__ void __launch_bounds__(kWarps * 32)
    attention_fwd_fused(float* out, float* att, const float* qkv, int Tn, int D, int H, float scale) {
  extern __shared__ float sm[];
  const int hd = D / H, ldk = hd + 1;
  float* Ks = sm;
  float* Vs = Ks + Tn * ldk;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* q = Vs + Tn * ldk + warp * hd;
  const int bh = blockIdx.x, b = bh / H, h = bh % H;
  const size_t ld = 3 * size_t(D);
  const float* base = qkv + size_t(b) * Tn * ld + size_t(h) * hd;  // q of token 0, head h
  stage(Ks, base + D, ld, Tn, hd);
  stage(Vs, base + 2 * D, ld, Tn, hd);
  __syncthreads();
  float* A = att + size_t(bh) * Tn * Tn;
  for (int i = warp; i < Tn; i += kWarps) {
    for (int d = lane; d < hd; d += 32) q[d] = base[size_t(i) * ld + d];
    __syncwarp();
    float s[JT];
    float mx = -INFINITY;
#pragma unroll
    for (int t = 0; t < JT; ++t) {
      const int j = lane + 32 * t;
      float acc = -INFINITY;
      if (j < Tn) {
        const float* kr = Ks + j * ldk;
        acc = 0.f;
        for (int d = 0; d < hd; ++d) acc += q[d] * kr[d];
        acc *= scale;
      }
      s[t] = acc;
      mx = fmaxf(mx, acc);
    }
    mx = warp_max(mx);
    float sum = 0.f;
#pragma unroll
    for (int t = 0; t < JT; ++t) {
      const int j = lane + 32 * t;
      const float e = j < Tn ? expf(s[t] - mx) : 0.f;
      s[t] = e;
      sum += e;
    }
    const float inv = 1.f / warp_sum(sum);
#pragma unroll
    for (int t = 0; t < JT; ++t) {
      const int j = lane + 32 * t;
      s[t] *= inv;
      if (j < Tn) A[size_t(i) * Tn + j] = s[t];
    }
    // out_i = Σ_j p_j v_j, lanes over d, p_j broadcast from the lane that owns it
    float o[kMaxHdChunks] = {};
#pragma unroll
    for (int t = 0; t < JT; ++t) {
      // unroll 4, not fully: 8 key chunks × 32 fully unrolled needed 255 registers and spilled (ptxas -v)
#pragma unroll 4
      for (int jj = 0; jj < 32; ++jj) {
        const int j = 32 * t + jj;
        if (j >= Tn) break;  // uniform across the warp
        const float p = __shfl_sync(0xffffffffu, s[t], jj);
        const float* vr = Vs + j * ldk;
#pragma unroll
        for (int c = 0; c < kMaxHdChunks; ++c) {
          const int d = lane + 32 * c;
          if (d < hd) o[c] += p * vr[d];
        }
      }
    }
    float* orow = out + (size_t(b) * Tn + i) * D + size_t(h) * hd;
#pragma unroll
    for (int c = 0; c < kMaxHdChunks; ++c) {
      const int d = lane + 32 * c;
      if (d < hd) orow[d] = o[c];
    }
    __syncwarp();  // q is rewritten by the next row
  }
}

// Phase 1 (K, V staged; warp per query row i): datt = dout_i·vᵀ, ds = att ⊙ (datt − Σ datt ⊙ att) → scratch,
// dq_i += scale · ds · K.  Phase 2 (Q, dout staged; warp per key row j): dk_j += scale · Σ_i ds_ij q_i,
// dv_j += Σ_i att_ij dout_i.  Every dqkv element is owned by one lane of one block: no atomics.
template <int JT>
__global__ void __launch_bounds__(kWarps * 32)
    attention_bwd_fused(float* dqkv, float* scratch, const float* dout, const float* qkv, const float* att, int Tn,
                        int D, int H, float scale) {
  extern __shared__ float sm[];
  const int hd = D / H, ldk = hd + 1;
  float* S1 = sm;
  float* S2 = S1 + Tn * ldk;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float* w = S2 + Tn * ldk + warp * hd;
  const int bh = blockIdx.x, b = bh / H, h = bh % H;
  const size_t ld = 3 * size_t(D);
  const float* base = qkv + size_t(b) * Tn * ld + size_t(h) * hd;
  float* dbase = dqkv + size_t(b) * Tn * ld + size_t(h) * hd;
  const float* gbase = dout + size_t(b) * Tn * D + size_t(h) * hd;
  const float* A = att + size_t(bh) * Tn * Tn;
  float* DS = scratch + size_t(bh) * Tn * Tn;

  stage(S1, base + 2 * D, ld, Tn, hd);  // V
  stage(S2, base + D, ld, Tn, hd);      // K
  __syncthreads();
  for (int i = warp; i < Tn; i += kWarps) {
    for (int d = lane; d < hd; d += 32) w[d] = gbase[size_t(i) * D + d];
    __syncwarp();
    float ds[JT];
    float dot = 0.f;
#pragma unroll
    for (int t = 0; t < JT; ++t) {
      const int j = lane + 32 * t;
      float g = 0.f, a = 0.f;
      if (j < Tn) {
        const float* vr = S1 + j * ldk;
        for (int d = 0; d < hd; ++d) g += w[d] * vr[d];
        a = A[size_t(i) * Tn + j];
      }
      ds[t] = g;
      dot += g * a;
    }
    dot = warp_sum(dot);
#pragma unroll
    for (int t = 0; t < JT; ++t) {
      const int j = lane + 32 * t;
      if (j < Tn) {
        ds[t] = A[size_t(i) * Tn + j] * (ds[t] - dot);
        DS[size_t(i) * Tn + j] = ds[t];
      } else {
        ds[t] = 0.f;
      }
    }
    float acc[kMaxHdChunks] = {};
#pragma unroll
    for (int t = 0; t < JT; ++t) {
      // unroll 4, not fully: 8 key chunks × 32 fully unrolled needed 255 registers and spilled (ptxas -v)
#pragma unroll 4
      for (int jj = 0; jj < 32; ++jj) {
        const int j = 32 * t + jj;
        if (j >= Tn) break;
        const float p = __shfl_sync(0xffffffffu, ds[t], jj);
        const float* kr = S2 + j * ldk;
#pragma unroll
        for (int c = 0; c < kMaxHdChunks; ++c) {
          const int d = lane + 32 * c;
          if (d < hd) acc[c] += p * kr[d];
        }
      }
    }
    float* dq = dbase + size_t(i) * ld;
#pragma unroll
    for (int c = 0; c < kMaxHdChunks; ++c) {
      const int d = lane + 32 * c;
      if (d < hd) dq[d] += scale * acc[c];
    }
    __syncwarp();
  }
  __syncthreads();  // DS complete and visible to the block; S1/S2 free
  stage(S1, base, ld, Tn, hd);    // Q
  stage(S2, gbase, D, Tn, hd);    // dout
  __syncthreads();
  for (int j = warp; j < Tn; j += kWarps) {
    float dk[kMaxHdChunks] = {}, dv[kMaxHdChunks] = {};
    for (int i = 0; i < Tn; ++i) {
      const float s = DS[size_t(i) * Tn + j];  // same address across the warp: one broadcast load
      const float a = A[size_t(i) * Tn + j];
      const float* qr = S1 + i * ldk;
      const float* gr = S2 + i * ldk;
#pragma unroll
      for (int c = 0; c < kMaxHdChunks; ++c) {
        const int d = lane + 32 * c;
        if (d < hd) {
          dk[c] += s * qr[d];
          dv[c] += a * gr[d];
        }
      }
    }
    float* dk_row = dbase + size_t(j) * ld + D;
    float* dv_row = dk_row + D;
#pragma unroll
    for (int c = 0; c < kMaxHdChunks; ++c) {
      const int d = lane + 32 * c;
      if (d < hd) {
        dk_row[d] += scale * dk[c];
        dv_row[d] += dv[c];
      }
    }
  }
}

template <class K> bool set_smem(K kernel, size_t bytes) {
  int dev = 0, optin = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) return false;
  if (bytes > size_t(optin)) return false;
  MAE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  return true;
}

AttentionImpl g_impl = [] {
  const char* e = std::getenv("MAE_CUDA_ATTENTION");
  return e && std::strcmp(e, "cublas") == 0 ? AttentionImpl::cublas : AttentionImpl::fused;
}();

template <class F> bool dispatch_jt(int Tn, F&& f) {
  if (Tn <= 32) return f(std::integral_constant<int, 1>{});
  if (Tn <= 64) return f(std::integral_constant<int, 2>{});
  if (Tn <= 128) return f(std::integral_constant<int, 4>{});
  if (Tn <= 256) return f(std::integral_constant<int, 8>{});
  return false;
}
}  // namespace

void set_attention_impl(AttentionImpl impl) { g_impl = impl; }
AttentionImpl attention_impl() { return g_impl; }

bool fused_attention_forward(float* out, float* att, const float* qkv, int B, int Tn, int D, int H) {
  const int hd = D / H;
  if (g_impl != AttentionImpl::fused || Tn > kFusedMaxTokens || hd > kFusedMaxHeadDim || B * H == 0) return false;
  const size_t smem = fused_smem_bytes(Tn, hd);
  const float scale = 1.f / std::sqrt(float(hd));
  return dispatch_jt(Tn, [&](auto jt) {
    auto kernel = attention_fwd_fused<decltype(jt)::value>;
    if (!set_smem(kernel, smem)) return false;
    kernel<<<B * H, kWarps * 32, smem, ctx().stream>>>(out, att, qkv, Tn, D, H, scale);
    MAE_CUDA_LAUNCHED();
    return true;
  });
}

bool fused_attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv, const float* att,
                              int B, int Tn, int D, int H) {
  const int hd = D / H;
  if (g_impl != AttentionImpl::fused || Tn > kFusedMaxTokens || hd > kFusedMaxHeadDim || B * H == 0) return false;
  const size_t smem = fused_smem_bytes(Tn, hd);
  const float scale = 1.f / std::sqrt(float(hd));
  return dispatch_jt(Tn, [&](auto jt) {
    auto kernel = attention_bwd_fused<decltype(jt)::value>;
    if (!set_smem(kernel, smem)) return false;
    kernel<<<B * H, kWarps * 32, smem, ctx().stream>>>(dqkv, scratch, dout, qkv, att, Tn, D, H, scale);
    MAE_CUDA_LAUNCHED();
    return true;
  });
}

}  // namespace mae::cuda
