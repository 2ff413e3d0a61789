// A stack of timm transformer Blocks with explicit forward and backward, shared by the MAE encoder and decoder
// (model/mae.h) and the ViT classifier (model/vit.h).
//
//   x = x + drop_path(attn(norm1(x)));  x = x + drop_path(mlp(norm2(x)))      (timm Block)
//
// Weights and gradients are pointers into the owner's flat buffers, found by name (prefix + "N.norm1.weight", ...).
// Activations are planned into the owner's arena: plan() appends this stack's buffers to a request list and the
// owner allocates the arena once (allocate_arena below). Backward scratch is shared by all stacks of one owner:
// the owner plans one BlockScratch sized for the largest stack.
//
// Drop path (stochastic depth, timm DropPath): optional, per block and per residual branch a per-sample scale that
// is 0 (path dropped) or 1/(1−p) (kept), p rising linearly over depth: dpr = linspace(0, drop_path_rate, depth).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "model/params.h"

namespace mae {

// What a model is built for. Inference (embed, knn, linprobe's frozen encoder, reconstruct, forward without
// --backward, finetune --eval) allocates no gradients and no backward buffers, and the blocks of a stack share one
// set of activations (each block reads only the previous block's output, which it consumes before overwriting):
// for ViT-B that is ~2.5× less memory than the training model.
enum class ModelMode { train, inference };

// The ops take a GEMM's rows (batch × tokens) as int, as a 32-bit BLAS does: a model checks its batch in 64 bits
// with this before it allocates anything (a flag's batch is bounded by limits::kBatchImages, but tokens grow with
// the image size).
inline void check_batch_rows(int64_t batch, int64_t tokens) {
  if (batch < 1) fail("batch size must be positive, got ", batch);
  if (batch * tokens > std::numeric_limits<int>::max())
    fail("a batch of ", batch, " images of ", tokens, " tokens is ", batch * tokens, " rows, more than the ",
         std::numeric_limits<int>::max(), " one GEMM takes: use a smaller --batch_size");
}

// (where to store the pointer, how many elements) in the order the arena lays them out.
template <class T> using ArenaRequests = std::vector<std::pair<T**, size_t>>;

// One allocation for every request (each rounded up to 16 elements, 64 bytes); returns the arena and its size.
template <class Bk> typename Bk::T* allocate_arena(ArenaRequests<typename Bk::T>& req, size_t* total) {
  size_t n = 0;
  for (auto& r : req) n += (r.second + 15) / 16 * 16;
  auto* arena = Bk::template alloc<typename Bk::T>(n);
  size_t off = 0;
  for (auto& r : req) {
    *r.first = arena + off;
    off += (r.second + 15) / 16 * 16;
  }
  *total = n;
  return arena;
}

// Workspace of one block, shared between stacks (contents undefined between calls). lnout and act hold the
// LayerNorm and GELU outputs, which are not kept per block: forward writes them here just before the GEMM that
// reads them, backward recomputes them here (an element-wise pass each) — a third of the activation memory.
template <class T> struct BlockScratch {
  T *ln = nullptr, *qkv = nullptr, *atty = nullptr, *fc1 = nullptr, *gelu = nullptr, *att = nullptr;
  T *lnout = nullptr, *act = nullptr;
  T* branch = nullptr;  // ∂loss/∂branch output under drop path (only planned when some stack uses drop path)
  // The row-tiled CPU backward's weight gradients of its runs after the first (BlockStack::backward): one copy of
  // a stack's gradient span per extra run. Untouched (so, mapped zero pages: no memory) where nothing tiles.
  T* run_grads = nullptr;
  size_t run_grads_n = 0;

  struct Size {  // elements each buffer needs
    size_t nd = 0, nh = 0, att = 0, run_grads = 0;
    bool drop_path = false;
    void merge(const Size& o) {
      nd = nd > o.nd ? nd : o.nd;
      nh = nh > o.nh ? nh : o.nh;
      att = att > o.att ? att : o.att;
      run_grads = run_grads > o.run_grads ? run_grads : o.run_grads;
      drop_path = drop_path || o.drop_path;
    }
  };
  void plan(ArenaRequests<T>& req, const Size& s) {
    req.push_back({&ln, s.nd});
    req.push_back({&qkv, 3 * s.nd});
    req.push_back({&atty, s.nd});
    req.push_back({&fc1, s.nh});
    req.push_back({&gelu, s.nh});
    req.push_back({&att, s.att});
    req.push_back({&lnout, s.nd});
    req.push_back({&act, s.nh});
    if (s.drop_path) req.push_back({&branch, s.nd});
    if (s.run_grads) req.push_back({&run_grads, s.run_grads});
    run_grads_n = s.run_grads;
  }
};

// Model FLOPs of one forward of `depth` blocks on B sequences of Tn tokens of width W (MLP width `hidden`): qkv +
// proj + fc1 + fc2, and q·kᵀ + att·v, 2·M·N·K each.
inline double blocks_flops(double B, double Tn, double W, double hidden, int depth) {
  return depth * (2 * B * Tn * W * (3 * W + W + 2 * hidden) + 2 * 2 * B * Tn * Tn * W);
}

template <class Bk> class BlockStack {
 public:
  using T = typename Bk::T;

  struct Weights {
    T *ln1w, *ln1b, *qkvw, *qkvb, *projw, *projb, *ln2w, *ln2b, *fc1w, *fc1b, *fc2w, *fc2b;
  };
  struct Acts {
    // LayerNorm outputs and GELU output are recomputed in backward (BlockScratch::lnout, act), not kept.
    T *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *xmid, *ln2_mean, *ln2_rstd, *fc1, *xout;
  };

  // Blocks prefix + "0." ... prefix + (depth−1) + "." of `list`, width D, H heads, MLP hidden width, LayerNorm eps.
  // grads nullptr: an inference stack (no backward).
  void bind(const ParamList& list, const std::string& prefix, int depth, T* params, T* grads, int D, int H,
            int hidden, double ln_eps);
  // Enables drop path with per-block rates linspace(0, rate, depth). Call before plan(): it adds the scale buffer.
  void set_drop_path_rate(double rate);
  // Appends the activations for up to `batch` sequences of Tn tokens to req: one set per block for training, one
  // set shared by all blocks for inference.
  void plan(ArenaRequests<T>& req, int batch, int Tn, ModelMode mode = ModelMode::train);
  typename BlockScratch<T>::Size scratch_size() const;
  void use_scratch(const BlockScratch<T>* s) { scratch_ = s; }

  // x0 (B, Tn, D) with B ≤ the planned batch. Returns the last block's output (B, Tn, D), kept for backward.
  // Every op of a block works row by row or sample by sample, so on the CPU the batch runs in tiles of whole
  // samples, one thread per tile through all blocks (forward_tiles): the same values, no waiting between ops.
  const T* forward(const T* x0, int B);
  int forward_tiles(int B) const;  // how many row tiles forward splits B samples into (1: none)
  // The same tiles, or 1 where the scratch has no room for a second run's gradients (see g_lo_, run_slots).
  int backward_tiles(int B) const { return run_slots() > 0 ? forward_tiles(B) : 1; }
  // dres: ∂loss/∂(last output) on entry, ∂loss/∂x0 on exit (both residual branches accumulate into it in
  // place); parameter gradients accumulate. Uses the activations of the last forward (same x0, same B).
  // On the CPU it runs in the forward's row tiles too: the tiles split into one run of consecutive tiles per
  // thread, each run adding its weight gradients into its own copy of the stack's gradients (the first run into
  // the real ones), summed in run order at the end — deterministic, whichever thread takes which run.
  void backward(const T* x0, T* dres, int B);

  // ---- drop path ----
  // Training mode applies the drop-path scales; evaluation (the default) never drops.
  void set_training(bool on) { training_ = on; }
  bool drop_path_active() const { return training_ && rate_ > 0; }
  double block_rate(int i) const;  // dpr[i]
  // Draws the masks of the next forward: sample b uses Rng::keyed(key, a, sample_ids[b]) and draws, for block 0,
  // 1, ...: the attention branch, then the MLP branch (one uniform each; kept iff u ≥ p, as timm's
  // floor(keep_prob + rand)). Every block draws, so the stream of a sample does not depend on the rates.
  void draw_drop_path(uint64_t key, uint64_t a, const int64_t* sample_ids, int B);
  // Explicit scales (tests): (depth, 2, B) host values, branch 0 = attention, 1 = MLP. Blocks whose rate is 0
  // ignore theirs (timm's DropPath(0.) is the identity).
  void set_drop_scales(const T* host_scales, int B);
  // The scales of the last draw/set: (depth, 2, planned batch) host values.
  const std::vector<T>& drop_scales() const { return host_scale_; }

  int depth() const { return int(w_.size()); }
  int width() const { return D_; }
  int tokens() const { return Tn_; }
  const Weights& weights(int i) const { return w_[size_t(i)]; }
  const Acts& acts(int i) const { return a_[shared_acts_ ? 0 : size_t(i)]; }  // shared by all blocks in inference
  // FLOPs of one forward for B sequences (blocks_flops).
  double forward_flops(int B) const;

 private:
  // Block i on samples [b0, b0 + B) of the batch: x and every buffer are the whole batch's, offset inside.
  void block_forward(int i, const T* x, int b0, int B, bool ln1_done);
  void blocks_forward(const T* x0, int b0, int B);  // every block, in order, on samples [b0, b0 + B)
  // Block i's backward on samples [b0, b0 + B), its parameter gradients added into g (g_[i] or a run's copy).
  void block_backward(int i, const T* x, T* dres, int b0, int B, const Weights& g);
  void blocks_backward(const T* x0, T* dres, int b0, int B, T* grads);  // every block, last first; grads: see g_lo_
  Weights rebase(const Weights& g, T* base) const;  // g's pointers moved from the gradient buffer into base
  int tile_threads() const;  // the CPU backend's row_tile_threads(), 1 elsewhere
  static uint64_t frozen_weights_version();  // the CPU backend's FrozenWeights scope on this thread, 0 elsewhere
  // Extra runs the scratch holds this stack's gradients for (0: the stack's gradients are not one span, or the
  // scratch was planned without room: an inference model, or a stack that did not tile at the planned batch).
  int run_slots() const {
    return g_span_ > 0 && scratch_ && scratch_->run_grads ? int(scratch_->run_grads_n / g_span_) : 0;
  }
  const T* scale(int i, int branch) const { return scale_ + (size_t(i) * 2 + branch) * size_t(batch_); }
  bool drops(int i) const { return drop_path_active() && block_rate(i) > 0; }

  std::vector<Weights> w_, g_;
  std::vector<Acts> a_;
  bool shared_acts_ = false;  // inference: a_ holds one set used by every block
  int D_ = 0, H_ = 0, hidden_ = 0, Tn_ = 0, batch_ = 0;
  T eps_ = T(1e-6);
  const BlockScratch<T>* scratch_ = nullptr;
  double rate_ = 0;
  bool training_ = false;
  T* scale_ = nullptr;          // (depth, 2, batch) in the arena, when rate_ > 0
  // The stack's gradients span [g_lo_, g_lo_ + g_span_) of the owner's gradient buffer (0: not contiguous enough to
  // copy, and the backward is not tiled); the tiled backward's runs after the first add into copies of that span
  // (BlockScratch::run_grads).
  T* g_lo_ = nullptr;
  size_t g_span_ = 0;
  std::vector<T> host_scale_;   // staging for scale_
};

}  // namespace mae
