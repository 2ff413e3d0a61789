#include "model/pth_export.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace mae {

namespace {

// A JSON value as the Python value torch.load(weights_only=True) can hold (see io/pth_writer.h): floats that are
// whole numbers become ints, other floats and containers their text.
io::PyValue py_number(double x) {
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9e15) return io::PyValue::integer(int64_t(x));
  return io::PyValue::str(nlohmann::json(x).dump());
}
io::PyValue py_value(const nlohmann::json& v) {
  if (v.is_null()) return io::PyValue::none();
  if (v.is_boolean()) return io::PyValue::boolean(v.get<bool>());
  if (v.is_number_integer()) return io::PyValue::integer(v.get<int64_t>());
  if (v.is_number()) return py_number(v.get<double>());
  if (v.is_string()) return io::PyValue::str(v.get<std::string>());
  return io::PyValue::str(v.dump());
}

}  // namespace

io::PthDocument pth_document(const StateDict& sd) {
  io::PthDocument doc;
  auto add = [&](const std::string& name) {
    const io::Tensor& t = sd.tensors.at(name);
    if (t.is_float()) doc.model.push_back({name, io::DType::F32, t.shape, t.f.data()});
    else doc.model.push_back({name, io::DType::I64, t.shape, t.i.data()});
  };
  for (const std::string& n : sd.order) add(n);
  for (const std::string& n : sd.extras) add(n);

  // The run position of our training checkpoints: "run".epoch is the epoch in progress (or the next one), so the
  // official "last finished epoch" is one less.
  if (auto it = sd.metadata.find("run"); it != sd.metadata.end()) {
    const auto run = nlohmann::json::parse(it->second, nullptr, false);
    if (run.is_object() && run.contains("epoch") && run["epoch"].is_number_integer() && run["epoch"].get<int64_t>() >= 1)
      doc.epoch = run["epoch"].get<int64_t>() - 1;
  }
  if (auto it = sd.metadata.find("args"); it != sd.metadata.end()) {
    const auto args = nlohmann::json::parse(it->second, nullptr, false);
    if (args.is_object())
      for (const auto& [k, v] : args.items()) doc.args.push_back({k, py_value(v)});
  }

  const ModelConfig& c = sd.config;
  using io::PyValue;
  doc.config = {{"img_size", PyValue::integer(c.img_size)},     {"patch_size", PyValue::integer(c.patch_size)},
                {"in_chans", PyValue::integer(c.in_chans)},     {"embed_dim", PyValue::integer(c.embed_dim)},
                {"depth", PyValue::integer(c.depth)},           {"num_heads", PyValue::integer(c.num_heads)},
                {"mlp_ratio", py_number(c.mlp_ratio)}};
  if (sd.kind == ModelKind::Classifier) {
    doc.config.push_back({"num_classes", PyValue::integer(sd.classifier.nb_classes)});
    doc.config.push_back({"qkv_bias", PyValue::boolean(true)});
    doc.config.push_back({"global_pool", PyValue::boolean(sd.classifier.global_pool)});
  } else {
    doc.config.push_back({"decoder_embed_dim", PyValue::integer(c.decoder_embed_dim)});
    doc.config.push_back({"decoder_depth", PyValue::integer(c.decoder_depth)});
    doc.config.push_back({"decoder_num_heads", PyValue::integer(c.decoder_num_heads)});
    doc.config.push_back({"norm_pix_loss", PyValue::boolean(c.norm_pix_loss)});
  }
  return doc;
}

}  // namespace mae
