#include "model/inference_classifier.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/pretrained.h"
#include "model/vit_weights.h"
#include "ops/backend.h"
#include "ops/dispatch.h"
#include "ops/staged.h"

namespace mae {

ClassifierConfig classifier_config_of(const LoadedWeights& w) {
  auto head = w.tensors.find("head.weight");
  if (head == w.tensors.end() || head->second.shape.size() != 2)
    fail(w.path, ": not a fine-tuned classifier (no head.weight", w.has_decoder ? "; it is an MAE checkpoint" : "",
         "): fine-tune it first with `mae finetune --finetune ", w.path, "`");
  ClassifierConfig cc;
  cc.nb_classes = int(head->second.shape[0]);
  cc.global_pool = w.tensors.count("fc_norm.weight") > 0;
  cc.drop_path = 0;
  return cc;
}

LoadedClassifier load_classifier(const std::string& path, const std::string& model_name) {
  const LoadedWeights w = load_weights_any(path, model_name);
  LoadedClassifier c;
  c.path = path;
  c.format = w.format;
  c.config_source = w.config_source;
  c.config = w.config;
  c.head = classifier_config_of(w);
  const ParamList pl = make_vit_params(c.config, c.head);
  c.params.assign(pl.total, 0.0f);
  const FinetuneInit r = load_finetune_weights(w, c.config, pl, c.params.data());
  for (const auto& n : r.missing) fail(path, ": missing tensor '", n, "' of the classifier");
  for (float v : c.params)
    if (!std::isfinite(v)) fail(path, ": holds a non-finite weight: the weights of a diverged run cannot be used");
  // "class_names": a JSON list written by `mae finetune`; older files have none and get their indices.
  if (auto it = w.metadata.find("class_names"); it != w.metadata.end()) {
    try {
      const auto j = nlohmann::json::parse(it->second);
      if (j.is_array() && int(j.size()) <= c.head.nb_classes)
        for (const auto& n : j) c.class_names.push_back(n.get<std::string>());
    } catch (const std::exception&) {
      c.class_names.clear();  // malformed: indices, as for a file without names
    }
  }
  c.named = !c.class_names.empty();
  for (int k = int(c.class_names.size()); k < c.head.nb_classes; k++) c.class_names.push_back(std::to_string(k));
  c.norm = checkpoint_normalization(path, c.config.in_chans, &c.norm_source);
  return c;
}

namespace {

template <class Bk> class InferenceClassifierOn final : public InferenceClassifier {
 public:
  InferenceClassifierOn(const LoadedClassifier& c, int batch, Precision precision)
      : m_(c.config, c.head, batch, ModelMode::inference), precision_(precision) {
    MAE_CHECK(m_.params().total == c.params.size());
    Bk::upload(m_.params_data(), c.params.data(), c.params.size());
    m_.set_training(false);
  }
  int batch() const override { return m_.batch(); }
  int num_classes() const override { return m_.num_classes(); }
  const float* forward(const float* imgs, int n) override {
    MAE_CHECK(n >= 1 && n <= m_.batch(), n, m_.batch());
    const typename Bk::PrecisionScope scope(precision_);
    const typename Bk::FrozenWeights frozen(version_);  // the weights never change after the constructor
    const ModelConfig& c = m_.config();
    const float* in = imgs_.put(imgs, size_t(n) * c.in_chans * c.img_size * c.img_size);
    return on_host<Bk>(m_.forward(in, n), size_t(n) * m_.num_classes(), logits_mirror_);
  }

 private:
  VitClassifier<Bk> m_;
  const Precision precision_;
  const uint64_t version_ = new_weights_version();
  Staged<Bk> imgs_;
  std::vector<float> logits_mirror_;
};

}  // namespace

std::unique_ptr<InferenceClassifier> make_inference_classifier(const LoadedClassifier& c, int batch,
                                                               const DeviceSpec& spec) {
  return with_backend(spec, [&]<class Bk>() -> std::unique_ptr<InferenceClassifier> {
    return std::make_unique<InferenceClassifierOn<Bk>>(c, batch, spec.precision);
  });
}

}  // namespace mae
