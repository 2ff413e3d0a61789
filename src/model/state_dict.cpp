#include "model/state_dict.h"

#include "core/error.h"
#include "model/checkpoint_load.h"
#include "model/params.h"
#include "model/pos_embed.h"
#include "model/pretrained.h"

namespace mae {

namespace {

struct KindName {
  ModelKind kind;
  const char* flag;
  const char* words;
};
constexpr KindName kKinds[] = {
    {ModelKind::Mae, "mae", "an MAE (encoder + decoder)"},
    {ModelKind::Encoder, "encoder", "an encoder-only MAE"},
    {ModelKind::Classifier, "classifier", "a fine-tuned classifier"},
};

const KindName& name_of(ModelKind k) {
  for (const KindName& n : kKinds)
    if (n.kind == k) return n;
  MAE_CHECK(false, "unknown ModelKind");
}

}  // namespace

const char* kind_flag(ModelKind k) { return name_of(k).flag; }
const char* kind_words(ModelKind k) { return name_of(k).words; }

ModelKind parse_kind(const std::string& s, const std::string& flag) {
  for (const KindName& n : kKinds)
    if (s == n.flag) return n.kind;
  fail(flag, " ", s, ": expected mae, encoder or classifier");
}

const io::Tensor& StateDict::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail(path, ": no tensor '", name, "'");
  return it->second;
}

StateDict load_state_dict(const std::string& path, const std::string& model_name, const std::string& config) {
  LoadedWeights w = load_weights_any(path, model_name, config);
  StateDict sd;
  sd.path = w.path, sd.format = w.format, sd.config_source = w.config_source, sd.config = w.config;
  sd.metadata = std::move(w.metadata);

  // A head makes it a classifier (models_vit: head + fc_norm with global pool, head + norm with the cls token).
  ParamList list;
  if (auto head = w.tensors.find("head.weight"); head != w.tensors.end()) {
    if (head->second.shape.size() != 2 || head->second.shape[0] < 1)
      fail(w.path, ": head.weight has shape ", shape_str(head->second.shape), ", expected (nb_classes, embed_dim)");
    sd.kind = ModelKind::Classifier;
    sd.classifier.nb_classes = int(head->second.shape[0]);
    sd.classifier.global_pool = w.tensors.count("fc_norm.weight") > 0;
    sd.classifier.drop_path = 0;
    if (w.has_decoder)
      fail(w.path, ": holds both a classifier head and MAE decoder weights: not one model (the official modules "
                   "have one or the other)");
    list = make_vit_params(sd.config, sd.classifier);
  } else {
    sd.kind = w.has_decoder ? ModelKind::Mae : ModelKind::Encoder;
    list = make_mae_params(sd.config);
  }
  fill_params(w, list, nullptr, false);  // every tensor of the module, by name and shape (else an error)

  auto take = [&](const std::string& name) {
    io::Tensor t = std::move(w.tensors.at(name));  // moved, not copied: ViT-H weights are 2.5 GB
    w.tensors.erase(name);
    t.dtype = io::DType::F32;  // float16/bfloat16/float64 files were converted to float on reading
    sd.order.push_back(name);
    sd.tensors[name] = std::move(t);
  };
  for (const ParamSpec& s : list.specs)
    if (sd.kind != ModelKind::Encoder || !is_decoder_param(s.name)) take(s.name);
  // The fixed sin-cos tables of the MAE (requires_grad=False parameters the official state_dict carries): the
  // file's, else computed.
  auto table = [&](const char* name, int dim, const std::vector<int64_t>& shape) {
    if (auto it = w.tensors.find(name); it != w.tensors.end() && it->second.is_float()) return take(name);
    io::Tensor t;
    t.shape = shape;
    const std::vector<float> v = sincos_pos_embed_2d(dim, sd.config.grid(), sd.config.grid(), true);
    t.f.assign(v.begin(), v.end());
    sd.order.push_back(name);
    sd.tensors[name] = std::move(t);
  };
  if (sd.kind != ModelKind::Classifier) table("pos_embed", sd.config.embed_dim, pos_embed_shape(sd.config));
  if (sd.kind == ModelKind::Mae)
    table("decoder_pos_embed", sd.config.decoder_embed_dim, decoder_pos_embed_shape(sd.config));
  for (auto& [name, t] : w.tensors) {
    sd.extras.push_back(name);
    sd.tensors[name] = std::move(t);
  }
  sd.norm = checkpoint_normalization(path, sd.config.in_chans, &sd.norm_source);
  return sd;
}

void convert_kind(StateDict& sd, ModelKind want) {
  if (sd.kind == want) return;
  const std::string why = sd.kind == ModelKind::Encoder
                              ? "it is encoder-only (no decoder weights, no mask_token)"
                          : sd.kind == ModelKind::Classifier
                              ? "it is a fine-tuned classifier (head.weight, a learned pos_embed" +
                                    std::string(sd.classifier.global_pool ? ", fc_norm" : "") + ")"
                              : "it has no classifier head (fine-tune it first: mae finetune --finetune " + sd.path + ")";
  if (!(sd.kind == ModelKind::Mae && want == ModelKind::Encoder))
    fail(sd.path, ": cannot be written as ", kind_words(want), ": ", why);
  // MAE -> its encoder: what main_pretrain's checkpoints become as mae_pretrain_vit_*.pth.
  std::vector<std::string> order;
  for (const std::string& n : sd.order)
    if (is_decoder_param(n)) sd.tensors.erase(n);  // decoder_*, mask_token, decoder_pos_embed
    else order.push_back(n);
  sd.order = std::move(order);
  sd.kind = ModelKind::Encoder;
}

}  // namespace mae
