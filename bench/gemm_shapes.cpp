// GEMM throughput on the shapes the MAE models actually run, to pick the CPU GEMM library by measurement.
// Built once per library by bench/CMakeLists.txt (GEMM_BLAS_OPENBLAS, GEMM_BLAS_BLIS, GEMM_BLAS_MKL or GEMM_BLAS_DNNL); see
// bench/README.md. The oneDNN build runs src/ops/cpu/dnnl_matmul.cpp, the very code mae's bf16 path calls, with f32
// or bf16 operands (--dtype; bf16: operands rounded once before timing, f32 accumulation and output).
//
//   gemm_shapes_openblas [--threads=N] [Google Benchmark flags]   (gemm_shapes_blis, gemm_shapes_mkl alike)
//   gemm_shapes_dnnl [--threads=N] [--dtype=f32|bf16] [Google Benchmark flags]
//
// Every run prints the host (CPU model, vector extensions, OpenBLAS core, oneDNN ISA) in its context, and the
// oneDNN builds the implementation oneDNN chose per shape as the benchmark's label.
//
// Linear layers: out (M, O) = in (M, I) · W (O, I)ᵀ, exactly the three calls of src/ops/cpu/linear.cpp
//   fwd: gemm(N,T, M, O, I)   dX: gemm(N,N, M, I, O)   dW: gemm(T,N, O, I, M)
// Attention: the per-(batch, head) products of src/ops/cpu/attention.cpp, issued from an OpenMP parallel-for
// over B·H on the strided qkv rows (lda = 3D), so the BLAS runs inside a parallel region as it does in mae; in the
// oneDNN build, the batched matmul of src/ops/cpu/attention_dnnl.cpp (the forward under --precision bf16).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ops/cpu/bf16.h"
#include "ops/cpu/host_info.h"
#if defined(GEMM_BLAS_BLIS)
#include <blis.h>
#elif defined(GEMM_BLAS_OPENBLAS)
#include <cblas.h>
#elif defined(GEMM_BLAS_MKL)
#include <cblas.h>  // OpenBLAS's header: the standard CBLAS prototypes, resolved against libmkl_rt
// From mkl_service.h (Debian's libmkl-dev, not needed otherwise): the runtime library's threading layer and threads.
extern "C" int MKL_Set_Threading_Layer(int);
extern "C" void MKL_Set_Num_Threads(int);
extern "C" void MKL_Get_Version_String(char*, int);
#elif defined(GEMM_BLAS_DNNL)
#include <cblas.h>  // only to name OpenBLAS's core in the host line (and keep it linked for that)

#include "ops/cpu/dnnl_matmul.h"
#else
#error "define GEMM_BLAS_OPENBLAS, GEMM_BLAS_BLIS, GEMM_BLAS_MKL or GEMM_BLAS_DNNL"
#endif

namespace {

int g_threads = 2;
bool g_bf16 = false;  // oneDNN build: --dtype=bf16

void set_blas_threads(int n) {
  omp_set_num_threads(n);  // oneDNN's OpenMP runtime reads omp_get_max_threads()
#if defined(GEMM_BLAS_BLIS)
  bli_thread_set_num_threads(n);
#elif defined(GEMM_BLAS_OPENBLAS)
  openblas_set_num_threads(n);
#elif defined(GEMM_BLAS_MKL)
  MKL_Set_Num_Threads(n);
#endif
}

std::string blas_name() {
#if defined(GEMM_BLAS_BLIS)
  return std::string("BLIS ") + bli_info_get_version_str() + " (arch " + bli_arch_string(bli_arch_query_id()) +
         ", openmp " + std::to_string(bli_info_get_enable_openmp()) + ")";
#elif defined(GEMM_BLAS_OPENBLAS)
  return std::string(openblas_get_config()) + " (core " + openblas_get_corename() + ")";
#elif defined(GEMM_BLAS_MKL)
  char v[256] = {};
  MKL_Get_Version_String(v, sizeof v);
  return std::string(v) + " (GNU OpenMP threading layer)";
#else
  return mae::cpu::dnnl_mm::describe() + (g_bf16 ? ", bf16 operands" : ", f32 operands") +
         " (OpenBLAS core " + openblas_get_corename() + " in this process, unused)";
#endif
}

std::vector<float> random_buffer(size_t n, unsigned seed) {
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& x : v) x = u(rng);
  return v;
}

// C (M, N) = op(A) · op(B), row-major, beta = 1 like the backward accumulations (forward uses beta = 1 too: bias).
void bm_gemm(benchmark::State& st, bool ta, bool tb, int M, int N, int K) {
  set_blas_threads(g_threads);
  auto A = random_buffer(size_t(M) * K, 1), B = random_buffer(size_t(K) * N, 2);
  std::vector<float> C(size_t(M) * N, 0.f);
  const int lda = ta ? M : K, ldb = tb ? K : N;
#if defined(GEMM_BLAS_DNNL)
  namespace mm = mae::cpu::dnnl_mm;
  // bf16: the operands rounded once here; mae rounds the activation operand per call (a memory-bound pass the
  // step timings of mae bench include) and the weights once per step.
  std::vector<uint16_t> Ah(g_bf16 ? A.size() : 0), Bh(g_bf16 ? B.size() : 0);
  mae::cpu::to_bf16(Ah.data(), A.data(), Ah.size());
  mae::cpu::to_bf16(Bh.data(), B.data(), Bh.size());
  const mm::Operand t = g_bf16 ? mm::Operand::bf16 : mm::Operand::f32;
  const void* a = g_bf16 ? static_cast<const void*>(Ah.data()) : A.data();
  const void* b = g_bf16 ? static_cast<const void*>(Bh.data()) : B.data();
  st.SetLabel(mm::impl_name(t, ta, tb, M, N, K));
  mm::matmul(t, ta, tb, M, N, K, a, lda, b, ldb, nullptr, true, C.data(), N);  // the primitive is made here, once
  for (auto _ : st) {
    mm::matmul(t, ta, tb, M, N, K, a, lda, b, ldb, nullptr, true, C.data(), N);
    benchmark::ClobberMemory();
  }
#else
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.f,
                A.data(), lda, B.data(), ldb, 1.f, C.data(), N);
    benchmark::ClobberMemory();
  }
#endif
  st.counters["GFLOPS"] = benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate);
}

// qkv (B, T, 3D) → att (B·H, T, T) = q·kᵀ·scale, or out (B, T, D) = att · v, on the strided qkv rows.
// BLAS builds: one GEMM per (b, h) from an OpenMP parallel-for over B·H (src/ops/cpu/attention.cpp, fp32).
// oneDNN build: one batched matmul over all (b, h) (src/ops/cpu/attention_dnnl.cpp's calls; bf16: operands
// rounded once before timing).
void bm_attention(benchmark::State& st, bool scores, int B, int T, int D, int H) {
  set_blas_threads(g_threads);
  const int hd = D / H, ld = 3 * D;
  auto qkv = random_buffer(size_t(B) * T * ld, 3), att = random_buffer(size_t(B) * H * T * T, 4);
  std::vector<float> out(size_t(B) * T * D);
#if defined(GEMM_BLAS_DNNL)
  namespace mm = mae::cpu::dnnl_mm;
  const int64_t t = T, h = hd, l = ld;
  const mm::Strides head{t * l, h, l, 1}, head_t{t * l, h, 1, l}, probs{H * t * t, t * t, t, 1}, cols{t * D, h, D, 1};
  std::vector<uint16_t> qh(g_bf16 ? qkv.size() : 0), ah(g_bf16 ? att.size() : 0);
  mae::cpu::to_bf16(qh.data(), qkv.data(), qh.size());
  mae::cpu::to_bf16(ah.data(), att.data(), ah.size());
  const mm::Operand ty = g_bf16 ? mm::Operand::bf16 : mm::Operand::f32;
  const size_t es = g_bf16 ? 2 : 4;
  const char* q = g_bf16 ? reinterpret_cast<const char*>(qh.data()) : reinterpret_cast<const char*>(qkv.data());
  const void* a = g_bf16 ? static_cast<const void*>(ah.data()) : att.data();
  auto run = [&] {
    if (scores) mm::matmul_batched(ty, B, H, T, T, hd, q, head, q + D * es, head_t, 0.125f, att.data(), probs);
    else mm::matmul_batched(ty, B, H, T, hd, T, a, probs, q + 2 * D * es, head, 1.f, out.data(), cols);
  };
  run();  // the primitive is made here, once
  for (auto _ : st) {
    run();
    benchmark::ClobberMemory();
  }
#else
  for (auto _ : st) {
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; ++bh) {
      const int b = bh / H, h = bh % H;
      const float* q = qkv.data() + size_t(b) * T * ld + h * hd;
      float* a = att.data() + size_t(bh) * T * T;
      if (scores)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 0.125f, q, ld, q + D, ld, 0.f, a, T);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.f, a, T, q + 2 * D, ld, 0.f,
                    out.data() + size_t(b) * T * D + h * hd, D);
    }
    benchmark::ClobberMemory();
  }
#endif
  st.counters["GFLOPS"] =
      benchmark::Counter(2.0 * B * H * T * T * hd, benchmark::Counter::kIsIterationInvariantRate);
}

struct Part {
  const char* name;  // model/part/batch
  int tokens;        // M = batch · tokens per image
  int dim, heads, batch, seq;
};

// Batches of the compare.sh configs; tokens = batch · (1 + visible patches) in the encoder, batch · (1 + L) in
// the decoder, mask 0.75.
const Part kParts[] = {
    {"fmnist_b256/enc", 256 * 13, 192, 3, 256, 13},   {"fmnist_b256/dec", 256 * 50, 128, 4, 256, 50},
    {"tiny_b32/enc", 32 * 50, 192, 3, 32, 50},        {"tiny_b32/dec", 32 * 197, 512, 16, 32, 197},
    {"base_b8/enc", 8 * 50, 768, 12, 8, 50},          {"base_b8/dec", 8 * 197, 512, 16, 8, 197},
    {"base_b8/embed", 8 * 197, 768, 12, 8, 197},  // mae embed: the ViT-B/16 encoder on all 196 patches
};

// Wall time: the BLAS threads do the work, the main thread's CPU time would say nothing.
template <class... Args> void add(const std::string& name, Args&&... args) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

std::string dims(int a, int b, int c) {
  return std::to_string(a) + "x" + std::to_string(b) + "x" + std::to_string(c);
}

void register_all() {
  for (const Part& p : kParts) {
    const int D = p.dim;
    // (in, out) of qkv, proj, fc1, fc2 (mlp_ratio 4)
    const int io[4][2] = {{D, 3 * D}, {D, D}, {D, 4 * D}, {4 * D, D}};
    const char* layer[4] = {"qkv", "proj", "fc1", "fc2"};
    for (int l = 0; l < 4; ++l) {
      const int M = p.tokens, I = io[l][0], O = io[l][1];
      const std::string base = std::string(p.name) + "/" + layer[l];
      add(base + "/fwd:" + dims(M, O, I), bm_gemm, false, true, M, O, I);
      add(base + "/dX:" + dims(M, I, O), bm_gemm, false, false, M, I, O);
      add(base + "/dW:" + dims(O, I, M), bm_gemm, true, false, O, I, M);
    }
    const int hd = D / p.heads, bh = p.batch * p.heads;
    add(std::string(p.name) + "/attn/qk:" + std::to_string(bh) + "x" + dims(p.seq, p.seq, hd), bm_attention, true,
        p.batch, p.seq, D, p.heads);
    add(std::string(p.name) + "/attn/av:" + std::to_string(bh) + "x" + dims(p.seq, hd, p.seq), bm_attention, false,
        p.batch, p.seq, D, p.heads);
  }
  add("square/fwd:" + dims(2048, 2048, 2048), bm_gemm, false, true, 2048, 2048, 2048);
}

}  // namespace

int main(int argc, char** argv) {
#if defined(GEMM_BLAS_MKL)
  // Before any other MKL call: the GNU OpenMP layer (libmkl_gnu_thread), the runtime mae and the other builds use,
  // instead of Intel's libiomp5, which Debian's runtime package does not ship. 3 = MKL_THREADING_GNU.
  MKL_Set_Threading_Layer(3);
#endif
  // Our own flag first; Google Benchmark rejects flags it does not know.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      g_threads = std::atoi(argv[i] + 10);
    } else if (std::strncmp(argv[i], "--dtype=", 8) == 0) {
      const std::string d = argv[i] + 8;
      if (d != "f32" && d != "bf16") return std::fprintf(stderr, "--dtype must be f32 or bf16\n"), 2;
      g_bf16 = d == "bf16";
#if !defined(GEMM_BLAS_DNNL)
      if (g_bf16) return std::fprintf(stderr, "--dtype=bf16 needs the oneDNN build (gemm_shapes_dnnl)\n"), 2;
#endif
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  set_blas_threads(g_threads);
  const mae::cpu::HostInfo& host = mae::cpu::host_info();
  benchmark::AddCustomContext("host", host.line());
  benchmark::AddCustomContext("cpu_model", host.cpu_model);
  benchmark::AddCustomContext("vector_ext", host.vector_ext);
  benchmark::AddCustomContext("openblas_core", host.openblas_core);
  benchmark::AddCustomContext("blas", blas_name());
  benchmark::AddCustomContext("blas_threads", std::to_string(g_threads));
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
