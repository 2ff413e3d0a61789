#include "cli/device.h"

#include "core/error.h"
#ifdef MAE_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mae::cli {

bool select_device(const std::string& device, const std::string& precision) {
  if (precision != "fp32" && precision != "bf16") fail("--precision must be fp32 or bf16, got '", precision, "'");
  if (device == "cpu") {
    if (precision != "fp32") fail("--precision ", precision, " needs --device cuda (the CPU backend computes in fp32)");
    return false;
  }
  if (device != "cuda") fail("--device must be cpu or cuda, got '", device, "'");
#ifdef MAE_CUDA
  if (cuda::device_count() == 0) {
    cuda::require_device();  // throws "no CUDA device found (<driver's reason>)"
    fail("no CUDA device found");
  }
  cuda::set_precision(cuda::parse_precision(precision));
  return true;
#else
  fail("--device cuda: this mae was built without CUDA (reconfigure with -DMAE_CUDA=ON on a machine with nvcc)");
#endif
}

void add_device_options(CLI::App* c, std::string& device, std::string& precision) {
  c->add_option("--device", device, "cpu or cuda")->capture_default_str();
  c->add_option("--precision", precision,
                "GEMM precision on cuda: fp32, or bf16 (bf16 GEMMs with fp32 accumulation; fp32 master weights, "
                "LayerNorm, softmax, loss)")
      ->capture_default_str();
}

void add_cuda_graph_option(CLI::App* c, bool& on) {
  c->add_flag("--cuda_graph,--cuda-graph", on,
              "With --device cuda: capture the step's forward+backward once as a CUDA graph and replay it (saves the "
              "launch overhead of small models; same results)");
}
void check_cuda_graph(bool on, const std::string& device) {
  if (on && device != "cuda") fail("--cuda_graph needs --device cuda");
}

}  // namespace mae::cli
