// mae classify: the top classes of images under a fine-tuned classifier, through the C++ API (include/mae/mae.h) —
// the same object `mae serve` answers /classify with — and `mae finetune --eval`'s preprocessing.
#include <nlohmann/json.hpp>

#include "api/convert.h"
#include "cli/common.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/decode.h"
#include "mae/mae.h"

namespace mae::cli {
namespace {

struct ClassifyArgs {
  std::string checkpoint, model, data_path, split = "val";
  std::vector<std::string> images;
  int topk = 5, batch_size = 64, threads = 0;
  bool json = false;
  std::string device = "cpu";
};

void run_classify(const ClassifyArgs& a) {
  if (a.images.empty() == a.data_path.empty())
    fail("give the pictures either as --image FILE [FILE ...] or as --data_path DIR (one of the two)");
  if (a.topk < 1) fail("--topk must be ≥ 1, got ", a.topk);
  if (a.batch_size < 1 || a.batch_size > 1024) fail("--batch_size must be in [1, 1024], got ", a.batch_size);
  api::ModelOptions mo;
  mo.model = a.model, mo.device = a.device, mo.threads = a.threads, mo.max_batch = a.batch_size;
  mo.max_queue = a.batch_size;
  const auto model = api::Model::load(a.checkpoint, mo);
  const api::ModelInfo& info = model->info();
  if (!info.can_classify)
    fail(a.checkpoint, ": not a fine-tuned classifier (it is ", info.kind == "mae" ? "an MAE" : "an encoder",
         " checkpoint): fine-tune it first with `mae finetune --finetune ", a.checkpoint, "`");

  std::unique_ptr<Dataset> ds;
  if (!a.data_path.empty()) ds = open_dataset(a.data_path, a.split);
  const size_t n = ds ? ds->size() : a.images.size();
  std::fprintf(stderr, "classifier: %s (%zu classes%s); %zu image(s)%s\n", a.checkpoint.c_str(),
               info.class_names.size(), info.class_names.empty() || info.class_names[0] != "0" ? "" : ", unnamed",
               n, ds ? (" of " + ds->description()).c_str() : "");
  nlohmann::json all = nlohmann::json::array();
  size_t correct = 0;
  const bool labelled = ds && ds->num_classes() > 1;
  std::vector<api::Pixels> batch;
  std::vector<std::string> names;
  std::vector<int> labels;
  Image img;
  std::vector<uint8_t> bytes;
  auto flush = [&] {
    if (batch.empty()) return;
    const auto top = model->classify(batch, a.topk);
    for (size_t k = 0; k < top.size(); k++) {
      if (labelled) correct += top[k][0].index == labels[k];
      if (a.json) {
        nlohmann::json t = nlohmann::json::array();
        for (const auto& c : top[k]) t.push_back({{"index", c.index}, {"name", c.name}, {"prob", c.prob}});
        nlohmann::json row = {{"image", names[k]}, {"top", t}};
        if (labelled) row["label"] = labels[k];
        all.push_back(row);
        continue;
      }
      std::printf("%s:", names[k].c_str());
      for (const auto& c : top[k]) std::printf("  %s %.4f", c.name.c_str(), c.prob);
      std::printf("\n");
    }
    batch.clear(), names.clear(), labels.clear();
  };
  for (size_t i = 0; i < n; i++) {
    if (ds) {
      ds->load(i, img);
      names.push_back(ds->item_name(i));
      labels.push_back(ds->label(i));
      batch.push_back(api_internal::to_pixels(img));
    } else {
      read_image_file(a.images[i], bytes);
      names.push_back(a.images[i]);
      batch.push_back(api::decode_image(bytes.data(), bytes.size(), 0, a.images[i]));
    }
    if (int(batch.size()) == a.batch_size) flush();
  }
  flush();
  if (a.json) std::printf("%s\n", all.dump(1).c_str());
  if (labelled)
    std::fprintf(stderr, "top-1 accuracy on %zu labelled images: %.3f%%\n", n, 100.0 * double(correct) / double(n));
}

}  // namespace

void add_classify(CLI::App& app) {
  auto a = std::make_shared<ClassifyArgs>();
  auto* c = app.add_subcommand("classify", "Top classes of images under a fine-tuned classifier (mae finetune)");
  c->footer(
      "Images get mae finetune --eval's preprocessing: shorter side resized (bicubic) to S/0.875 (S ≤ 224), centre "
      "crop, the model's channels, normalised with the statistics the fine-tuning used (checkpoint metadata). Class "
      "names come from the checkpoint (mae finetune stores the training data's); older files show class indices. "
      "With --data_path and labelled data the top-1 accuracy is printed at the end (stderr).");
  c->add_option("--checkpoint", a->checkpoint, "Fine-tuned classifier (.safetensors from mae finetune, .pth, HF folder)")
      ->required();
  c->add_option("--image", a->images, "Pictures (JPEG/PNG)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->expected(1, -1);
  c->add_option("--data_path,--data-path", a->data_path, "Instead of --image: every picture of a dataset's split");
  c->add_option("--split", a->split, "Split used with --data_path (train, val/test)")->capture_default_str();
  c->add_option("--topk", a->topk, "Classes shown per image")->capture_default_str();
  c->add_flag("--json", a->json, "One JSON document: [{image, top: [{index, name, prob}], label?}]");
  c->add_option("--batch_size,--batch-size", a->batch_size, "Images per forward")->capture_default_str();
  c->add_option("--model", a->model, "Preset name, for weights without config metadata (official .pth)");
  c->add_option("--threads", a->threads, "Compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  c->add_option("--device", a->device, "cpu, or cuda in CUDA builds")->capture_default_str();
  c->callback([a] { run_classify(*a); });
}

}  // namespace mae::cli
