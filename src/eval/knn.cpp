#include "eval/knn.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/limits.h"
#include "data/dataset.h"
#include "eval/frozen_encoder.h"
#include "io/atomic_file.h"
#include "model/checkpoint_load.h"
#include "ops/cpu/gemm.h"

namespace mae {

void knn_votes(double* votes, const float* sims, const int32_t* labels, int k, double T, int C) {
  std::fill(votes, votes + C, 0.0);
  // distances_transform = distances.clone().div_(T).exp_(); probs = Σ_k one_hot(label) · weight
  for (int j = 0; j < k; ++j) votes[labels[j]] += std::exp(double(sims[j]) / T);
}

KnnResult knn_classify(const float* bank, const int32_t* bank_labels, int64_t N, const float* queries,
                       const int32_t* query_labels, int64_t M, int D, int C, int k, double T,
                       std::vector<int32_t>* predictions) {
  if (N < 1) fail("k-NN: the feature bank is empty");
  if (k < 1) fail("--k must be ≥ 1, got ", k);
  if (!(T > 0)) fail("--temperature must be > 0, got ", T);
  k = int(std::min<int64_t>(k, N));
  for (int64_t i = 0; i < N; ++i)
    if (bank_labels[i] < 0 || bank_labels[i] >= C) fail("k-NN: bank label ", bank_labels[i], " of item ", i, " is outside [0, ", C, ")");
  if (predictions) predictions->assign(M, -1);
  // Similarities of a chunk of queries against the whole bank: (chunk, N) = queries · bankᵀ, one GEMM.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(256, (int64_t(1) << 25) / std::max<int64_t>(N, 1)));
  std::vector<float> sim(size_t(chunk) * N);
  KnnResult r;
  r.n = M;
  const int top_n = std::min(5, k);
  for (int64_t q0 = 0; q0 < M; q0 += chunk) {
    const int m = int(std::min<int64_t>(chunk, M - q0));
    cpu::gemm<float>(false, true, m, int(N), D, 1.0f, queries + size_t(q0) * D, D, bank, D, 0.0f, sim.data(), int(N));
    int64_t c1 = 0, c5 = 0;
#pragma omp parallel reduction(+ : c1, c5)
    {
      std::vector<std::pair<float, int64_t>> heap;  // min-heap of the k best (sim desc, index asc)
      std::vector<float> s(k);
      std::vector<int32_t> lab(k);
      std::vector<double> votes(C);
      std::vector<int> order(C);
      // "better" = higher similarity, then lower index: a strict total order, so the result is deterministic.
      auto better = [](const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      };
#pragma omp for schedule(static)
      for (int i = 0; i < m; ++i) {
        const float* row = sim.data() + size_t(i) * N;
        heap.clear();
        for (int64_t j = 0; j < N; ++j) {
          std::pair<float, int64_t> e{row[j], j};
          if (int(heap.size()) < k) {
            heap.push_back(e);
            std::push_heap(heap.begin(), heap.end(), better);  // top = worst of the kept
          } else if (better(e, heap.front())) {
            std::pop_heap(heap.begin(), heap.end(), better);
            heap.back() = e;
            std::push_heap(heap.begin(), heap.end(), better);
          }
        }
        std::sort(heap.begin(), heap.end(), better);
        for (int j = 0; j < k; ++j) s[j] = heap[j].first, lab[j] = bank_labels[heap[j].second];
        knn_votes(votes.data(), s.data(), lab.data(), k, T, C);
        for (int c = 0; c < C; ++c) order[c] = c;
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return votes[a] > votes[b]; });
        const int y = query_labels[q0 + i];
        if (order[0] == y) ++c1;
        for (int j = 0; j < top_n && j < C; ++j)
          if (order[j] == y) ++c5;
        if (predictions) (*predictions)[q0 + i] = order[0];
      }
    }
    r.top1 += c1;
    r.top5 += c5;
  }
  return r;
}

KnnResult run_knn(const KnnArgs& a) {
  if (a.k < 1) fail("--k must be ≥ 1, got ", a.k);
  if (!(a.temperature > 0)) fail("--temperature must be > 0, got ", a.temperature);
  limits::check_batch_size(a.batch_size);
  limits::check_num_workers(a.num_workers);
  if (a.raw_pixels && a.random_init) fail("--raw_pixels and --random_init are two different baselines: pick one");
  if (!a.raw_pixels && a.checkpoint.empty() && !(a.random_init && !a.model.empty()))
    fail("--checkpoint is required (or --raw_pixels, or --random_init with --model NAME)");
  const auto t_start = std::chrono::steady_clock::now();
  auto train = open_dataset(a.data_path, "train");
  auto test = open_dataset(a.data_path, "test");
  const int C = train->num_classes();
  for (size_t i = 0; i < test->size(); ++i)
    if (test->label(i) < 0 || test->label(i) >= C)
      fail("test split: label ", test->label(i), " of ", test->item_name(i), " is outside the train split's ", C,
           " classes (0..", C - 1, "): ", test->description());

  const int batch = limits::batch_within(a.batch_size, std::max(train->size(), test->size()));
  std::unique_ptr<FrozenEncoder> enc;
  std::string feature, source;
  TransformConfig tc;
  if (a.raw_pixels) {
    int size = train->height();
    if (size <= 0 || train->width() != size) {
      if (a.checkpoint.empty() && a.model.empty())
        fail("--raw_pixels on images of varying size needs an image size: give --model NAME or --checkpoint");
      size = a.model.empty() ? load_weights_any(a.checkpoint, "").config.img_size : preset(a.model).img_size;
    }
    tc = probe_eval_transform(*train, size, train->channels());
    feature = "raw pixels (normalised image, " + std::to_string(tc.channels * size * size) + "-d)";
    source = "no model";
  } else {
    EncoderSpec spec{a.checkpoint, a.model, a.random_init, a.seed, a.device};
    enc = std::make_unique<FrozenEncoder>(spec, batch);
    check_encoder_fits_data(enc->config(), a.checkpoint.empty() ? "--model " + a.model : a.checkpoint, *train);
    tc = probe_eval_transform(*train, enc->config().img_size, enc->config().in_chans);
    feature = a.global_pool ? "mean of patch tokens" : "cls token";
    source = enc->description();
  }
  std::fprintf(stderr, "encoder: %s\n", source.c_str());
  std::fprintf(stderr, "bank: %s\nqueries: %s\n", train->description().c_str(), test->description().c_str());
  const auto t_feat = std::chrono::steady_clock::now();
  FeatureSet bank = extract_features(enc.get(), *train, tc, a.global_pool, batch, a.num_workers, "train features");
  FeatureSet qry = extract_features(enc.get(), *test, tc, a.global_pool, batch, a.num_workers, "test features");
  const double feat_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_feat).count();
  l2_normalize_rows(bank.x.data(), bank.n, bank.dim);
  l2_normalize_rows(qry.x.data(), qry.n, qry.dim);
  const auto t_vote = std::chrono::steady_clock::now();
  const KnnResult r = knn_classify(bank.x.data(), bank.labels.data(), bank.n, qry.x.data(), qry.labels.data(), qry.n,
                                   bank.dim, C, a.k, a.temperature);
  const double vote_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_vote).count();
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

  char top5[64] = "";
  if (C > 5) std::snprintf(top5, sizeof top5, "  top-5 %.2f%%", r.acc5());
  std::printf("k-NN (k %d, T %g, %s): top-1 %.2f%%%s on %lld test images, bank of %lld  [features %.1f s, vote %.1f s, "
              "total %.1f s]\n",
              int(std::min<int64_t>(a.k, bank.n)), a.temperature, feature.c_str(), r.acc1(), top5,
              (long long)r.n, (long long)bank.n, feat_s, vote_s, total_s);
  std::fflush(stdout);
  if (!a.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.output_dir, ec);
    if (ec) fail("--output_dir ", a.output_dir, ": cannot create: ", ec.message());
    nlohmann::json j = {{"top1", r.acc1()},
                        {"top5", C > 5 ? nlohmann::json(r.acc5()) : nlohmann::json(nullptr)},
                        {"n_test", r.n},
                        {"n_bank", bank.n},
                        {"num_classes", C},
                        {"k", a.k},
                        {"temperature", a.temperature},
                        {"feature", feature},
                        {"encoder", source},
                        {"checkpoint", a.checkpoint},
                        {"raw_pixels", a.raw_pixels},
                        {"random_init", a.random_init},
                        {"seed", a.seed},
                        {"data", train->description()},
                        {"features_s", feat_s},
                        {"vote_s", vote_s},
                        {"total_s", total_s}};
    const std::string path = (std::filesystem::path(a.output_dir) / "knn.json").string();
    io::write_file_atomic(path, j.dump(2) + "\n");
    std::fprintf(stderr, "wrote %s\n", path.c_str());
  }
  return r;
}

}  // namespace mae
