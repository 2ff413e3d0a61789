#include "ops/cpu/dnnl_matmul.h"

#include <omp.h>

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
// split when the primitive is made.
struct Key {
  Operand type;
  bool ta, tb, bias, acc;
  int M, N, K, lda, ldb, ldc, threads;
  bool operator==(const Key&) const = default;
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = size_t(k.type) | size_t(k.ta) << 1 | size_t(k.tb) << 2 | size_t(k.bias) << 3 | size_t(k.acc) << 4;
    for (int v : {k.M, k.N, k.K, k.lda, k.ldb, k.ldc, k.threads}) h = h * 1000003u ^ size_t(v);
    return h;
  }
};

// The memory descriptors of op(A) (M, K), op(B) (K, N), C (M, N) and bias (1, N) as strided views of the caller's
// row-major buffers: a transposed operand is the same buffer with swapped strides, no copy.
struct Descs {
  dnnl::memory::desc a, b, c, bias;
};
Descs descs(const Key& k) {
  const dt t = k.type == Operand::bf16 ? dt::bf16 : dt::f32;
  Descs d;
  d.a = dnnl::memory::desc({k.M, k.K}, t, k.ta ? dims{1, k.lda} : dims{k.lda, 1});
  d.b = dnnl::memory::desc({k.K, k.N}, t, k.tb ? dims{1, k.ldb} : dims{k.ldb, 1});
  d.c = dnnl::memory::desc({k.M, k.N}, dt::f32, dims{k.ldc, 1});
  if (k.bias) d.bias = dnnl::memory::desc({1, k.N}, dt::f32, dims{k.N, 1});
  return d;
}

dnnl::matmul::primitive_desc make_pd(const Key& k) {
  const Descs d = descs(k);
  dnnl::primitive_attr attr;
  if (k.acc) {  // C += product: the sum post-op reads C before writing it
    dnnl::post_ops po;
    po.append_sum(1.f);
    attr.set_post_ops(po);
  }
  try {
    return k.bias ? dnnl::matmul::primitive_desc(dnnl::matmul::desc(d.a, d.b, d.bias, d.c), attr, engine())
                  : dnnl::matmul::primitive_desc(dnnl::matmul::desc(d.a, d.b, d.c), attr, engine());
  } catch (const dnnl::error& e) {
    fail("oneDNN matmul ", k.type == Operand::bf16 ? "bf16" : "f32", " ", k.ta ? "T" : "N", k.tb ? "T" : "N", " M ",
         k.M, " N ", k.N, " K ", k.K, ": ", e.what());
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

}  // namespace

void matmul(Operand type, bool transA, bool transB, int M, int N, int K, const void* A, int lda, const void* B,
            int ldb, const float* bias, bool accumulate, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  // One cache and one stream per thread (the data loader's threads never get here; tests may run ops from
  // several): the entries' memory objects are rebound on every call, so they must not be shared.
  thread_local std::unordered_map<Key, std::unique_ptr<Entry>, KeyHash> cache;
  thread_local dnnl::stream stream(engine());
  const Key k{type, transA, transB, bias != nullptr, accumulate, M, N, K, lda, ldb, ldc, omp_get_max_threads()};
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

std::string impl_name(Operand type, bool transA, bool transB, int M, int N, int K) {
  const Key k{type, transA, transB, false, true, M, N, K, transA ? M : K, transB ? K : N, N, omp_get_max_threads()};
  return make_pd(k).impl_info_str();
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
