// mae shard: an image folder → tar shards in the WebDataset layout (data/shard_writer.h), to train from a few
// hundred large files instead of a million small ones.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "data/shard_writer.h"

namespace mae::cli {
namespace {

struct ShardArgs {
  std::string data_path, split = "train";
  ShardWriteConfig w;
  bool no_shuffle = false;
  bool prefix_given = false;
};

void run_shard(ShardArgs a) {
  auto ds = open_dataset(a.data_path, a.split);
  const auto* folder = dynamic_cast<const FolderDataset*>(ds.get());
  if (!folder)
    fail("mae shard reads image folders; ", ds->description(), " is ", ds->name() == "shards" ? "already shards" :
         "not an image folder");
  if (!a.prefix_given) a.w.prefix = a.split;
  a.w.shuffle = !a.no_shuffle;
  std::fprintf(stderr, "data: %s\n", ds->description().c_str());
  Progress progress;
  const size_t n = ds->size();
  const ShardWriteResult r = write_shards(*folder, a.w, [&](size_t done) {
    progress.update(detail::cat("shard: ", done, "/", n, " images"), done == n);
  });
  progress.done();
  std::printf("wrote %zu images in %zu shards, %.1f MB (≤ %lld images, ≤ %llu bytes each; %s): %s\n", r.samples,
              r.shards.size(), double(r.bytes) / 1e6, (long long)a.w.max_count, (unsigned long long)a.w.max_size,
              a.w.shuffle ? ("shuffled with seed " + std::to_string(a.w.seed)).c_str() : "folder order",
              r.pattern.c_str());
  std::printf("train from them with --data_path '%s' (or --data_path %s)\n", r.pattern.c_str(), a.w.out_dir.c_str());
}

}  // namespace

void add_shard(CLI::App& app) {
  auto a = std::make_shared<ShardArgs>();
  auto* c = app.add_subcommand("shard", "Write an image folder as tar shards (WebDataset layout: key.jpg + key.cls)");
  c->add_option("--data_path,--data-path", a->data_path, "Image folder (<root>/<split>/<class>/*, or class folders)")
      ->required();
  c->add_option("--split", a->split, "Split to write: train, val or test")->capture_default_str();
  c->add_option("--output_dir,--output-dir", a->w.out_dir, "Folder for the shards")->required();
  c->add_option_function<std::string>("--prefix", [a](const std::string& p) { a->w.prefix = p, a->prefix_given = true; },
                                      "Shard names: <prefix>-000000.tar, ... (default: the split)");
  c->add_option("--max_count,--max-count", a->w.max_count, "Images per shard at most")->capture_default_str();
  c->add_option("--max_size,--max-size", a->w.max_size, "Bytes per shard at most")->capture_default_str();
  c->add_option("--seed", a->w.seed, "Seed of the one-time shuffle")->capture_default_str();
  c->add_flag("--no_shuffle,--no-shuffle", a->no_shuffle, "Keep the folder's order");
  c->add_flag("--overwrite", a->w.overwrite, "Replace shards of the same prefix already in --output_dir");
  c->callback([a] { run_shard(*a); });
}

}  // namespace mae::cli
