// Weighted k-NN classification on frozen features (the DINO / InstDisc monitor, eval_knn.py knn_classifier):
// bank and queries L2-normalised; for each query the k bank rows of highest cosine similarity vote for their
// labels with weight exp(sim / T); classes are ranked by summed weight.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ops/device_spec.h"

namespace mae {

struct KnnResult {
  int64_t n = 0;            // queries
  int64_t top1 = 0, top5 = 0;  // correct counts (top-5: the label among the first min(5, k) ranked classes)
  double acc1() const { return n ? 100.0 * double(top1) / double(n) : 0.0; }
  double acc5() const { return n ? 100.0 * double(top5) / double(n) : 0.0; }
};

// Class weights of one query from its neighbours: votes[c] = Σ_{j: labels[j] = c} exp(sims[j] / T). votes (C).
void knn_votes(double* votes, const float* sims, const int32_t* labels, int k, double T, int C);

// bank (N, D) and queries (M, D) already L2-normalised; labels in [0, C). k is clamped to N. Neighbour ties go to the
// lower bank index, class-weight ties to the lower class. predictions (M) receives the top-1 class when non-null.
KnnResult knn_classify(const float* bank, const int32_t* bank_labels, int64_t N, const float* queries,
                       const int32_t* query_labels, int64_t M, int D, int C, int k, double T,
                       std::vector<int32_t>* predictions = nullptr);

struct KnnArgs {
  std::string checkpoint;
  std::string model;      // preset overriding the checkpoint's config
  std::string data_path;  // "" = Fashion-MNIST
  bool global_pool = false;
  int k = 20;
  double temperature = 0.07;
  int batch_size = 256;
  int num_workers = 2;
  bool raw_pixels = false;
  bool random_init = false;
  uint64_t seed = 0;
  std::string output_dir;  // "" = write nothing
  DeviceSpec device;  // where the encoder runs (parsed by the CLI)
};

// The whole `mae knn`: features of the train split (the bank) and the test split, then the vote. Prints the result
// on stdout; with output_dir writes knn.json there. Throws mae::Error on bad input.
KnnResult run_knn(const KnnArgs& a);

}  // namespace mae
