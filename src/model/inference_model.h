// The MAE for inference on the CPU or, in CUDA builds, the GPU, with host images in and host results out: what the
// evaluation commands (embed, knn, linprobe, reconstruct) run, so each takes --device. On the CPU every call goes
// straight to MaeModel<CpuBackend<float>> (no copies); on CUDA the batch is uploaded and the results downloaded.
#pragma once
#include <cstdint>
#include <memory>

#include "model/config.h"
#include "model/params.h"
#include "ops/device_spec.h"

namespace mae {

class InferenceModel {
 public:
  virtual ~InferenceModel() = default;
  virtual const ModelConfig& config() const = 0;
  virtual const ParamList& params() const = 0;
  virtual int batch() const = 0;
  virtual double mask_ratio() const = 0;
  virtual int len_keep() const = 0;
  virtual const char* device() const = 0;  // "cpu" | "cuda"

  // Weights: set from / read into a host buffer of params().total floats (make_mae_params layout), or the official
  // initialisation from a seed.
  virtual void set_params(const float* host) = 0;
  virtual void get_params(float* host) const = 0;
  virtual void init(uint64_t seed) = 0;

  // MaeModel::forward on host images (B, C, S, S) and noise (B, L): returns the loss; pred() (B, 1+L, P) and mask()
  // (B, L) are host arrays valid until the next call.
  virtual float forward(const float* imgs, const float* noise) = 0;
  virtual const float* pred() = 0;
  virtual const float* mask() = 0;
  // MaeModel::forward_encoder: the latent (B, 1+K, D) after the final norm, a host array valid until the next call.
  virtual const float* forward_encoder(const float* imgs, const float* noise) = 0;
};

// On the backend of `spec` (ops/dispatch.h), built for inference (no gradients), computing at its precision.
// weights (params().total floats, make_mae_params layout), if given: on the CPU the model reads them where they are
// — no copy; they must outlive the model and stay unchanged, and its set_params/init are refused — on a GPU they are
// uploaded. Without them the weights are zero until set_params or init.
std::unique_ptr<InferenceModel> make_inference_model(const ModelConfig& cfg, int batch, double mask_ratio,
                                                     const DeviceSpec& spec = {}, const float* weights = nullptr);

}  // namespace mae
