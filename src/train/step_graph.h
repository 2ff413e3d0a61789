// The pretraining step (forward + backward) as one CUDA graph, replayed every micro-batch: the graph lives beside the
// training step, the model only offers its parts (set_mask, forward_masked, backward). Host backends run the plain
// step. Same kernels in the same order, so the same results bit for bit (test Cuda.ModelGraphStepMatchesEager).
#pragma once
#include "core/error.h"
#include "model/mae.h"
#include "ops/staged.h"

namespace mae {

template <class Bk> class GraphedStep {
 public:
  using T = typename Bk::T;
  explicit GraphedStep(MaeModel<Bk>& model) : m_(model) {}
  ~GraphedStep() {
    if constexpr (!kHostBk<Bk>) Bk::graph_destroy(graph_);
  }
  GraphedStep(const GraphedStep&) = delete;
  GraphedStep& operator=(const GraphedStep&) = delete;

  // = m.forward_nowait(imgs, noise); m.backward(dloss). On a device: eager at the first call (every scratch buffer
  // grows and every GEMM plan is made outside the capture), captured at the second, replayed after; recaptured when
  // imgs or dloss change (both are baked into the graph).
  void run(const T* imgs, const float* noise, T dloss) {
    if constexpr (kHostBk<Bk>) {
      m_.forward_nowait(imgs, noise);
      m_.backward(dloss);
    } else {
      m_.set_mask(noise);  // host argsort and uploads: outside the graph (their staging addresses change)
      if (graph_ && (imgs_ != imgs || dloss_ != dloss)) {
        Bk::graph_destroy(graph_);
        graph_ = nullptr, warm_ = 0;
      }
      if (!graph_ && warm_++ < 1) {
        m_.forward_masked(imgs);
        m_.backward(dloss);
        return;
      }
      if (!graph_) capture(imgs, dloss);
      if (!Bk::graph_launch(graph_)) {  // stale: scratch moved since the capture (another model grew it)
        Bk::graph_destroy(graph_);
        capture(imgs, dloss);
        MAE_CHECK(Bk::graph_launch(graph_), "CUDA graph stale right after its capture");
      }
      m_.loss_replayed();
    }
  }

 private:
  void capture(const T* imgs, T dloss) {
    graph_ = nullptr;
    Bk::graph_begin();
    try {
      m_.forward_masked(imgs);
      m_.backward(dloss);
      graph_ = Bk::graph_end();
    } catch (...) {
      Bk::graph_abort();
      throw;
    }
    imgs_ = imgs, dloss_ = dloss;
  }

  MaeModel<Bk>& m_;
  void* graph_ = nullptr;  // the executable graph, and what it was captured with
  const T* imgs_ = nullptr;
  T dloss_ = 0;
  int warm_ = 0;  // eager calls since the last (re)capture request
};

}  // namespace mae
