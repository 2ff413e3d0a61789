#include "model/inference_model.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "model/mae.h"
#include "ops/backend.h"
#ifdef MAE_CUDA
#include "ops/cuda/backend_cuda.h"
#endif

namespace mae {

namespace {

template <class Bk> class InferenceModelOn final : public InferenceModel {
 public:
  static constexpr bool kHost = std::is_base_of_v<HostMemory, Bk>;

  InferenceModelOn(const ModelConfig& cfg, int batch, double mask_ratio) : m_(cfg, batch, mask_ratio) {}
  ~InferenceModelOn() override {
    if constexpr (!kHost) Bk::release(dimgs_);
  }

  const ModelConfig& config() const override { return m_.config(); }
  const ParamList& params() const override { return m_.params(); }
  int batch() const override { return m_.batch(); }
  double mask_ratio() const override { return m_.mask_ratio(); }
  int len_keep() const override { return m_.len_keep(); }
  const char* device() const override { return kHost ? "cpu" : "cuda"; }

  void set_params(const float* host) override {
    if constexpr (kHost) std::copy_n(host, m_.params().total, m_.params_data());
    else Bk::upload(m_.params_data(), host, m_.params().total);
  }
  void get_params(float* host) const override {
    if constexpr (kHost) std::copy_n(m_.params_data(), m_.params().total, host);
    else Bk::download(host, m_.params_data(), m_.params().total);
  }
  void init(uint64_t seed) override { m_.init(seed); }

  float forward(const float* imgs, const float* noise) override {
    const float loss = m_.forward(input(imgs), noise);
    if constexpr (!kHost) {
      const ModelConfig& c = m_.config();
      const size_t B = size_t(m_.batch()), L = size_t(c.num_patches());
      pred_.resize(B * (1 + L) * size_t(c.patch_dim()));
      mask_.resize(B * L);
      Bk::download(pred_.data(), m_.pred(), pred_.size());
      Bk::download(mask_.data(), m_.mask(), mask_.size());
    }
    return loss;
  }
  const float* pred() override { return kHost ? m_.pred() : pred_.data(); }
  const float* mask() override { return kHost ? m_.mask() : mask_.data(); }

  const float* forward_encoder(const float* imgs, const float* noise) override {
    const float* lat = m_.forward_encoder(input(imgs), noise);
    if constexpr (kHost) {
      return lat;
    } else {
      latent_.resize(size_t(m_.batch()) * (1 + m_.len_keep()) * size_t(m_.config().embed_dim));
      Bk::download(latent_.data(), lat, latent_.size());
      return latent_.data();
    }
  }

 private:
  // The batch in the backend's memory.
  const float* input(const float* imgs) {
    if constexpr (kHost) {
      return imgs;
    } else {
      const ModelConfig& c = m_.config();
      const size_t n = size_t(m_.batch()) * c.in_chans * c.img_size * c.img_size;
      if (!dimgs_) dimgs_ = Bk::template alloc<float>(n);
      Bk::upload(dimgs_, imgs, n);
      return dimgs_;
    }
  }

  MaeModel<Bk> m_;
  float* dimgs_ = nullptr;                   // device backends: the uploaded batch
  std::vector<float> pred_, mask_, latent_;  // device backends: downloaded results
};

}  // namespace

std::unique_ptr<InferenceModel> make_inference_model(const ModelConfig& cfg, int batch, double mask_ratio, bool cuda) {
  if (cuda) {
#ifdef MAE_CUDA
    return std::make_unique<InferenceModelOn<CudaBackend<float>>>(cfg, batch, mask_ratio);
#else
    fail("--device cuda: this mae was built without CUDA");
#endif
  }
  return std::make_unique<InferenceModelOn<CpuBackend<float>>>(cfg, batch, mask_ratio);
}

}  // namespace mae
