// `mae convert --to hf DIR` (model/hf_folder.h): the folder holds what transformers' classes hold — tensor names and
// shapes, config.json and preprocessor_config.json fields — as listed by hand in tests/fixtures/hf_model_keys.txt
// (where that list comes from is said there), and load_weights_any reads the folder back to the same tensors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/checkpoint_load.h"
#include "model/hf_folder.h"
#include "model/state_dict.h"
#include "model/vit_weights.h"
#include "model/weights.h"

namespace mae {
namespace {

namespace fs = std::filesystem;
using Shapes = std::map<std::string, std::vector<int64_t>>;

fs::path tmp_dir(const std::string& name) {
  const fs::path d = fs::path(testing::TempDir()) / ("mae_hf_" + std::to_string(::getpid())) / name;
  fs::create_directories(d.parent_path());
  return d;
}

// The fixture's sections: "name dims..." lines (L and K expanded over the layers) or bare field names.
std::map<std::string, Shapes> fixture() {
  std::ifstream f(std::string(MAE_SOURCE_DIR) + "/tests/fixtures/hf_model_keys.txt");
  std::map<std::string, Shapes> out;
  std::string line, section;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    std::istringstream s(line);
    std::string name;
    std::vector<int64_t> dims;
    s >> name;
    for (int64_t d; s >> d;) dims.push_back(d);
    auto expand = [&](const std::string& n, char var, int count, auto&& next) {
      const std::string pat = std::string(".") + var + ".";
      const size_t at = n.find(pat);
      if (at == std::string::npos) return next(n);
      for (int k = 0; k < count; ++k) next(n.substr(0, at) + "." + std::to_string(k) + "." + n.substr(at + 3));
    };
    expand(name, 'L', 2, [&](const std::string& a) { expand(a, 'K', 1, [&](const std::string& b) { out[section][b] = dims; }); });
  }
  return out;
}

ModelConfig tiny() {
  ModelConfig c;
  c.img_size = 8, c.patch_size = 4, c.in_chans = 3;
  c.embed_dim = 8, c.depth = 2, c.num_heads = 2;
  c.decoder_embed_dim = 8, c.decoder_depth = 1, c.decoder_num_heads = 2;
  return c;
}

std::vector<float> values(size_t n, float seed) {
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = std::sin(seed + 0.37f * float(k));
  return v;
}

// A checkpoint file of the kind, written as our commands write them.
std::string checkpoint(ModelKind kind, bool global_pool = false) {
  const ModelConfig c = tiny();
  const std::string path = (tmp_dir(std::string(kind_flag(kind)) + (global_pool ? "_gp" : "")) += ".safetensors").string();
  if (kind == ModelKind::Classifier) {
    ClassifierConfig cc;
    cc.nb_classes = 3, cc.global_pool = global_pool;
    const ParamList list = make_vit_params(c, cc);
    save_classifier(path, c, cc, list, values(list.total, 1.0f).data());
  } else {
    const ParamList list = make_mae_params(c);
    save_params(path, c, list, values(list.total, 2.0f).data());
  }
  return path;
}

Shapes folder_tensors(const fs::path& dir) {
  const io::SafeTensorsReader r((dir / "model.safetensors").string());
  Shapes s;
  for (const std::string& n : r.names()) s[n] = r.entry(n).shape;
  return s;
}
std::set<std::string> json_keys(const fs::path& file) {
  std::ifstream f(file);
  const nlohmann::json j = nlohmann::json::parse(f);  // kept: items() refers to it
  std::set<std::string> k;
  for (const auto& [key, v] : j.items()) k.insert(key);
  return k;
}
std::set<std::string> names(const Shapes& s) {
  std::set<std::string> k;
  for (const auto& [n, d] : s) k.insert(n);
  return k;
}

void check_round_trip(const StateDict& sd, const fs::path& dir) {
  const LoadedWeights back = load_weights_any(dir.string(), "");
  EXPECT_EQ(back.config_source, (dir / "config.json").string());
  auto fields = [&](const ModelConfig& c) {  // a classifier's config (ViTConfig) has no decoder
    nlohmann::json j = config_to_json(c);
    if (sd.kind == ModelKind::Classifier)
      for (const char* k : {"decoder_embed_dim", "decoder_depth", "decoder_num_heads"}) j.erase(k);
    return j;
  };
  EXPECT_EQ(fields(back.config), fields(sd.config));
  for (const std::string& n : sd.order) {
    SCOPED_TRACE(n);
    ASSERT_TRUE(back.tensors.count(n));
    EXPECT_EQ(back.tensors.at(n).shape, sd.tensors.at(n).shape);
    EXPECT_EQ(back.tensors.at(n).f, sd.tensors.at(n).f);  // bit for bit: float == and no NaN in these
  }
  EXPECT_EQ(back.tensors.size(), sd.order.size());
}

TEST(HfFolder, MaeIsViTMAEForPreTraining) {
  const auto want = fixture();
  const StateDict sd = load_state_dict(checkpoint(ModelKind::Mae));
  const fs::path dir = tmp_dir("mae");
  const HfFolderInfo info = write_hf_folder(dir.string(), sd, 0.6, false);
  EXPECT_EQ(info.architecture, "ViTMAEForPreTraining");
  EXPECT_EQ(folder_tensors(dir), want.at("ViTMAEForPreTraining"));
  EXPECT_EQ(json_keys(dir / "config.json"), names(want.at("ViTMAEConfig")));
  EXPECT_EQ(json_keys(dir / "preprocessor_config.json"), names(want.at("ViTImageProcessor")));
  std::ifstream f(dir / "config.json");
  const auto cfg = nlohmann::json::parse(f);
  EXPECT_EQ(cfg["layer_norm_eps"], 1e-6);  // the official eps, not HF's 1e-12 default
  EXPECT_EQ(cfg["mask_ratio"], 0.6);
  EXPECT_EQ(cfg["hidden_act"], "gelu");
  check_round_trip(sd, dir);
}

TEST(HfFolder, EncoderOnlyIsViTMAEModel) {
  const auto want = fixture();
  StateDict sd = load_state_dict(checkpoint(ModelKind::Mae));
  convert_kind(sd, ModelKind::Encoder);
  const fs::path dir = tmp_dir("encoder");
  EXPECT_EQ(write_hf_folder(dir.string(), sd, 0.75, false).architecture, "ViTMAEModel");
  EXPECT_EQ(folder_tensors(dir), want.at("ViTMAEModel"));
  EXPECT_EQ(json_keys(dir / "config.json"), names(want.at("ViTMAEConfig")));
  check_round_trip(sd, dir);
}

TEST(HfFolder, ClsTokenClassifierIsViTForImageClassification) {
  const auto want = fixture();
  const StateDict sd = load_state_dict(checkpoint(ModelKind::Classifier));
  const fs::path dir = tmp_dir("classifier");
  EXPECT_EQ(write_hf_folder(dir.string(), sd, 0.75, false).architecture, "ViTForImageClassification");
  EXPECT_EQ(folder_tensors(dir), want.at("ViTForImageClassification"));
  EXPECT_EQ(json_keys(dir / "config.json"), names(want.at("ViTConfig")));
  std::ifstream f(dir / "config.json");
  EXPECT_EQ(nlohmann::json::parse(f)["id2label"].size(), 3u);
  check_round_trip(sd, dir);
  // Read back, it is the same classifier (cls token: norm, no fc_norm).
  const StateDict again = load_state_dict(dir.string());
  EXPECT_EQ(again.kind, ModelKind::Classifier);
  EXPECT_EQ(again.classifier.nb_classes, 3);
  EXPECT_FALSE(again.classifier.global_pool);
}

TEST(HfFolder, RefusalsLeaveNoFolder) {
  const StateDict gp = load_state_dict(checkpoint(ModelKind::Classifier, true));
  const fs::path dir = tmp_dir("refused");
  try {
    write_hf_folder(dir.string(), gp, 0.75, false);
    FAIL() << "a global-pool classifier has no HF class";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("global-pool"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir));
  const StateDict sd = load_state_dict(checkpoint(ModelKind::Mae));
  fs::create_directories(dir);
  EXPECT_THROW(write_hf_folder(dir.string(), sd, 0.75, false), Error);  // exists: refused without replace
  EXPECT_TRUE(fs::is_empty(dir));
  write_hf_folder(dir.string(), sd, 0.75, true);
  EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
  for (const auto& e : fs::directory_iterator(dir.parent_path()))  // no temp or old folder left beside it
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(StateDictKinds, ConversionsThatDoNotFit) {
  StateDict enc = load_state_dict(checkpoint(ModelKind::Mae));
  convert_kind(enc, ModelKind::Encoder);
  EXPECT_EQ(enc.kind, ModelKind::Encoder);
  for (const std::string& n : enc.order) EXPECT_FALSE(is_decoder_param(n)) << n;
  auto refuses = [](StateDict sd, ModelKind want, const char* why) {
    try {
      convert_kind(sd, want);
      ADD_FAILURE() << kind_flag(sd.kind) << " -> " << kind_flag(want) << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(sd.path), std::string::npos) << e.what();
    }
  };
  refuses(enc, ModelKind::Mae, "encoder-only");
  const StateDict cls = load_state_dict(checkpoint(ModelKind::Classifier));
  refuses(cls, ModelKind::Mae, "classifier");
  refuses(cls, ModelKind::Encoder, "classifier");
  refuses(load_state_dict(checkpoint(ModelKind::Mae)), ModelKind::Classifier, "no classifier head");
}

}  // namespace
}  // namespace mae
