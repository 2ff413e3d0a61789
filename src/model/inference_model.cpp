#include "model/inference_model.h"

#include <vector>

#include "core/error.h"
#include "model/mae.h"
#include "ops/backend.h"
#include "ops/staged.h"
#include "ops/dispatch.h"

namespace mae {

namespace {

template <class Bk> class InferenceModelOn final : public InferenceModel {
 public:
  // weights (may be null): on the host the model reads them in place; on a device they are uploaded.
  InferenceModelOn(const ModelConfig& cfg, int batch, double mask_ratio, Precision precision, const float* weights)
      : m_(cfg, batch, mask_ratio, ModelMode::inference, kHostBk<Bk> ? const_cast<float*>(weights) : nullptr),
        precision_(precision),
        shared_(kHostBk<Bk> && weights) {
    if (weights && !shared_) Bk::upload(m_.params_data(), weights, m_.params().total);
  }

  const ModelConfig& config() const override { return m_.config(); }
  const ParamList& params() const override { return m_.params(); }
  int batch() const override { return m_.batch(); }
  double mask_ratio() const override { return m_.mask_ratio(); }
  int len_keep() const override { return m_.len_keep(); }
  const char* device() const override { return Bk::name; }

  // Bk::upload/download: a memcpy on the CPU
  void set_params(const float* host) override {
    MAE_CHECK(!shared_, "set_params on a model that reads shared weights");
    Bk::upload(m_.params_data(), host, m_.params().total);
    version_ = new_weights_version();
  }
  void get_params(float* host) const override { Bk::download(host, m_.params_data(), m_.params().total); }
  void init(uint64_t seed) override {
    m_.init(seed);
    version_ = new_weights_version();
  }

  float forward(const float* imgs, const float* noise) override {
    const typename Bk::PrecisionScope scope(precision_);  // the object outlives the dispatch that made it
    const typename Bk::FrozenWeights frozen(version_);
    const float loss = m_.forward(input(imgs), noise);
    const ModelConfig& c = m_.config();
    const size_t B = size_t(m_.batch()), L = size_t(c.num_patches());
    pred_ = on_host<Bk>(m_.pred(), B * (1 + L) * size_t(c.patch_dim()), pred_mirror_);
    mask_ = on_host<Bk>(m_.mask(), B * L, mask_mirror_);
    return loss;
  }
  const float* pred() override { return pred_; }
  const float* mask() override { return mask_; }

  const float* forward_encoder(const float* imgs, const float* noise) override {
    const typename Bk::PrecisionScope scope(precision_);
    const typename Bk::FrozenWeights frozen(version_);
    const float* lat = m_.forward_encoder(input(imgs), noise);
    return on_host<Bk>(lat, size_t(m_.batch()) * (1 + m_.len_keep()) * size_t(m_.config().embed_dim), latent_mirror_);
  }

 private:
  const float* input(const float* imgs) {
    const ModelConfig& c = m_.config();
    return imgs_.put(imgs, size_t(m_.batch()) * c.in_chans * c.img_size * c.img_size);
  }

  MaeModel<Bk> m_;
  const Precision precision_;
  const bool shared_;  // m_ reads the weights given at construction, in place
  uint64_t version_ = new_weights_version();  // of the weights in m_ (set_params, init)
  Staged<Bk> imgs_;                                            // the batch in the backend's memory
  const float *pred_ = nullptr, *mask_ = nullptr;              // results of the last forward, host
  std::vector<float> pred_mirror_, mask_mirror_, latent_mirror_;  // device backends: downloaded results
};

}  // namespace

std::unique_ptr<InferenceModel> make_inference_model(const ModelConfig& cfg, int batch, double mask_ratio,
                                                     const DeviceSpec& spec, const float* weights) {
  return with_backend(spec, [&]<class Bk>() -> std::unique_ptr<InferenceModel> {
    return std::make_unique<InferenceModelOn<Bk>>(cfg, batch, mask_ratio, spec.precision, weights);
  });
}

}  // namespace mae
