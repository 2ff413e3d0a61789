#include "train/train_checkpoint.h"

#include <filesystem>

#include "core/error.h"
#include "model/weights.h"

namespace mae {

void save_train_checkpoint(const std::string& path, const ModelConfig& cfg, const ParamList& list,
                           const TrainBuffers& buf, const TrainState& st, const nlohmann::json& args) {
  std::vector<NamedBuffer> extra;
  for (const auto& s : list.specs) {
    extra.push_back({"optim.m." + s.name, s.shape, buf.m + s.offset});
    extra.push_back({"optim.v." + s.name, s.shape, buf.v + s.offset});
    if (st.pending_grads) extra.push_back({"optim.grad." + s.name, s.shape, buf.grads + s.offset});
  }
  nlohmann::json state = {{"epoch", st.epoch},
                          {"next_batch", st.next_batch},
                          {"step", st.step},
                          {"pending_grads", st.pending_grads}};
  save_params(path, cfg, list, buf.params, extra, {{"train_state", state.dump()}, {"args", args.dump()}});
}

TrainState load_train_checkpoint(const std::string& path, const ModelConfig& cfg, const ParamList& list,
                                 const TrainBuffers& buf, nlohmann::json* args_out) {
  io::SafeTensorsReader f(path);
  const ModelConfig have = read_config(f);
  if (config_to_json(have) != config_to_json(cfg))
    fail(path, ": checkpoint is for another model: ", config_to_json(have).dump(), " but this run's model is ",
         config_to_json(cfg).dump());
  auto it = f.metadata().find("train_state");
  if (it == f.metadata().end())
    fail(path, ": not a training checkpoint (no train_state metadata); to start from its weights use --finetune");
  TrainState st;
  try {
    const auto j = nlohmann::json::parse(it->second);
    st.epoch = j.at("epoch").get<int>();
    st.next_batch = j.at("next_batch").get<int64_t>();
    st.step = j.at("step").get<long>();
    st.pending_grads = j.value("pending_grads", false);
    if (args_out && f.metadata().count("args")) *args_out = nlohmann::json::parse(f.metadata().at("args"));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": malformed train_state metadata: ", e.what());
  }
  load_params(f, list, buf.params);
  for (const auto& s : list.specs) {
    f.read_f32("optim.m." + s.name, buf.m + s.offset, s.shape);
    f.read_f32("optim.v." + s.name, buf.v + s.offset, s.shape);
    if (st.pending_grads) f.read_f32("optim.grad." + s.name, buf.grads + s.offset, s.shape);
  }
  return st;
}

std::string find_latest_checkpoint(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path last = fs::path(dir) / "checkpoint-last.safetensors";
  if (fs::exists(last)) return last.string();
  std::string best;
  long best_n = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    long k;
    char tail[32];
    if (std::sscanf(n.c_str(), "checkpoint-%ld.%31s", &k, tail) == 2 && std::string(tail) == "safetensors" &&
        k > best_n)
      best_n = k, best = e.path().string();
  }
  return best;
}

}  // namespace mae
