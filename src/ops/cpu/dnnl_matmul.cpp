#include "ops/cpu/dnnl_matmul.h"

#include <omp.h>

#include <bit>
#include <dnnl.hpp>
#include <functional>
#include <memory>
#include <tuple>
#include <unordered_map>

#include "core/error.h"

namespace mae::cpu::dnnl_mm {

namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Everything that decides the primitive. The thread count is part of it: oneDNN's OpenMP runtime sizes its work
// split when the primitive is made. Strides are those of op(A) (M, K), op(B) (K, N) and C (M, N) as (batch, head,
// row, column) in elements: a transposed operand is the same buffer with swapped row/column strides, no copy.
struct Key {
  Operand type;
  bool bias, acc, gelu;
  float alpha;
  int nd;  // 2: one product; 4: a (B, H) batch of them
  int64_t B, H, M, N, K;
  Strides a, b, c;
  int threads;
  bool operator==(const Key&) const = default;
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = size_t(k.type) | size_t(k.bias) << 1 | size_t(k.acc) << 2 | size_t(k.nd) << 3 | size_t(k.gelu) << 6;
    for (int64_t v : {k.B, k.H, k.M, k.N, k.K, k.a.b, k.a.h, k.a.r, k.a.c, k.b.b, k.b.h, k.b.r, k.b.c, k.c.b, k.c.h,
                      k.c.r, k.c.c, int64_t(k.threads), int64_t(std::bit_cast<uint32_t>(k.alpha))})
      h = h * 1000003u ^ size_t(v);
    return h;
  }
};

struct Descs {
  dnnl::memory::desc a, b, c, bias;
};
Descs descs(const Key& k) {
  const dt t = k.type == Operand::bf16 ? dt::bf16 : dt::f32;
  auto md = [&](int64_t rows, int64_t cols, dt type, const Strides& s) {
    return k.nd == 2 ? dnnl::memory::desc({rows, cols}, type, dims{s.r, s.c})
                     : dnnl::memory::desc({k.B, k.H, rows, cols}, type, dims{s.b, s.h, s.r, s.c});
  };
  Descs d;
  d.a = md(k.M, k.K, t, k.a);
  d.b = md(k.K, k.N, t, k.b);
  d.c = md(k.M, k.N, dt::f32, k.c);
  if (k.bias) d.bias = dnnl::memory::desc({1, k.N}, dt::f32, dims{k.N, 1});
  return d;
}

dnnl::matmul::primitive_desc make_pd(const Key& k) {
  const Descs d = descs(k);
  dnnl::primitive_attr attr;
  if (k.alpha != 1.f) attr.set_output_scales(0, {k.alpha});  // applied to the product (before a sum post-op)
  dnnl::post_ops po;
  if (k.acc) po.append_sum(1.f);  // C += product: the sum post-op reads C before writing it
  if (k.gelu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  if (k.acc || k.gelu) attr.set_post_ops(po);
  try {
    return k.bias ? dnnl::matmul::primitive_desc(dnnl::matmul::desc(d.a, d.b, d.bias, d.c), attr, engine())
                  : dnnl::matmul::primitive_desc(dnnl::matmul::desc(d.a, d.b, d.c), attr, engine());
  } catch (const dnnl::error& e) {
    fail("oneDNN matmul ", k.type == Operand::bf16 ? "bf16" : "f32", " batch ", k.B, "x", k.H, " M ", k.M, " N ", k.N,
         " K ", k.K, ": ", e.what());
  }
}

// A primitive with its memory objects and argument map, built once; a call only swaps the data pointers in.
struct Entry {
  dnnl::matmul prim;
  dnnl::memory a, b, c, bias;
  std::unordered_map<int, dnnl::memory> args;
  explicit Entry(const Key& k) {
    const auto pd = make_pd(k);
    prim = dnnl::matmul(pd);
    const Descs d = descs(k);
    a = dnnl::memory(d.a, engine(), DNNL_MEMORY_NONE);
    b = dnnl::memory(d.b, engine(), DNNL_MEMORY_NONE);
    c = dnnl::memory(d.c, engine(), DNNL_MEMORY_NONE);
    args = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
    if (k.bias) {
      bias = dnnl::memory(d.bias, engine(), DNNL_MEMORY_NONE);
      args[DNNL_ARG_BIAS] = bias;
    }
  }
};

// Inside an OpenMP parallel region (the row tiles of ops/cpu/row_tiles.h) a matmul runs on its calling thread
// alone: oneDNN is told so (the thread's own nthreads ICV, which its OpenMP runtime reads at creation and
// execution) and the primitive is keyed by it.
struct OneThreadInParallel {
  int saved = 0;
  OneThreadInParallel() {
    if (omp_in_parallel()) saved = omp_get_max_threads(), omp_set_num_threads(1);
  }
  ~OneThreadInParallel() {
    if (saved) omp_set_num_threads(saved);
  }
};

Strides plain(bool trans, int ld) { return trans ? Strides{0, 0, 1, ld} : Strides{0, 0, ld, 1}; }
Key key2d(Operand type, bool transA, bool transB, int M, int N, int K, int lda, int ldb, bool bias, bool accumulate,
          int ldc, bool gelu = false) {
  return Key{type,       bias, accumulate, gelu, 1.f, 2, 1, 1, M, N, K, plain(transA, lda), plain(transB, ldb),
             plain(false, ldc), omp_get_max_threads()};
}

void run(const Key& k, const void* A, const void* B, const float* bias, float* C) {
  // One cache and one stream per thread (the data loader's threads never get here; tests may run ops from
  // several): the entries' memory objects are rebound on every call, so they must not be shared.
  thread_local std::unordered_map<Key, std::unique_ptr<Entry>, KeyHash> cache;
  thread_local dnnl::stream stream(engine());
  auto it = cache.find(k);
  if (it == cache.end()) it = cache.emplace(k, std::make_unique<Entry>(k)).first;
  Entry& e = *it->second;
  e.a.set_data_handle(const_cast<void*>(A));
  e.b.set_data_handle(const_cast<void*>(B));
  e.c.set_data_handle(C);
  if (bias) e.bias.set_data_handle(const_cast<float*>(bias));
  e.prim.execute(stream, e.args);
  stream.wait();
}

}  // namespace

void matmul(Operand type, bool transA, bool transB, int M, int N, int K, const void* A, int lda, const void* B,
            int ldb, const float* bias, bool accumulate, float* C, int ldc, bool gelu) {
  if (M == 0 || N == 0) return;
  const OneThreadInParallel one;
  run(key2d(type, transA, transB, M, N, K, lda, ldb, bias != nullptr, accumulate, ldc, gelu), A, B, bias, C);
}

void matmul_batched(Operand type, int B, int H, int M, int N, int K, const void* A, Strides sa, const void* Bm,
                    Strides sb, float alpha, float* C, Strides sc) {
  if (B == 0 || H == 0 || M == 0 || N == 0) return;
  const OneThreadInParallel one;
  run(Key{type, false, false, false, alpha, 4, B, H, M, N, K, sa, sb, sc, omp_get_max_threads()}, A, Bm, nullptr, C);
}

std::string impl_name(Operand type, bool transA, bool transB, int M, int N, int K) {
  return make_pd(key2d(type, transA, transB, M, N, K, transA ? M : K, transB ? K : N, false, true, N)).impl_info_str();
}

std::string describe() {
  const dnnl_version_t* v = dnnl_version();
  const char* isa = "?";
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2: isa = "avx2"; break;
    case dnnl::cpu_isa::avx2_vnni: isa = "avx2_vnni"; break;
    case dnnl::cpu_isa::avx512_core: isa = "avx512_core"; break;
    case dnnl::cpu_isa::avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl::cpu_isa::avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl::cpu_isa::avx512_core_amx: isa = "avx512_core_amx"; break;
    default: isa = "other"; break;
  }
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         (v->cpu_runtime == DNNL_RUNTIME_OMP ? " (OpenMP runtime)" : " (non-OpenMP runtime)") + ", ISA " + isa;
}

bool native_bf16(std::string* why) {
  try {
    const std::string impl = impl_name(Operand::bf16, false, true, 256, 256, 256);
    if (impl.find("bf16") != std::string::npos || impl.find("amx") != std::string::npos) return true;
    if (why) *why = "oneDNN would run bf16 matmuls with '" + impl + "' (no native bf16 kernel: " + describe() + ")";
  } catch (const std::exception& e) {
    if (why) *why = "oneDNN has no bf16 matmul for this CPU (" + describe() + "): " + e.what();
  }
  return false;
}

}  // namespace mae::cpu::dnnl_mm
