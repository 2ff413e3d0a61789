#include "cli/device.h"

#include "core/error.h"

namespace mae::cli {

DeviceSpec select_device(const std::string& device, const std::string& precision) {
  return parse_device_spec(device, precision);
}

void add_device_options(CLI::App* c, std::string& device, std::string& precision) {
  c->add_option("--device", device, "cpu or cuda")->capture_default_str();
  c->add_option("--precision", precision,
                "GEMM precision: fp32, or bf16 (bf16 GEMMs with fp32 accumulation; fp32 master weights, "
                "LayerNorm, softmax, loss); bf16 on the CPU needs avx512_bf16 or AMX and a build with oneDNN")
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
