// One op × backend test harness (in the spirit of ggml's test-backend-ops). Every op of src/ops/op_decls.inc is
// described ONCE, in tests/op_cases.h, as cases: the tensors of a call (inputs, parameters, index tensors, state
// updated in place, outputs, saved statistics, workspace, returned scalars) with their sizes and how to fill them,
// and a forward and a backward written once for any backend `Bk` (RefBackend / CpuBackend / CudaBackend, float or
// double). Each case is then run through the checks below:
//   fd      ref<double>: backward == central finite differences of f = Σ r ⊙ outputs (a random projection)
//   cpu     cpu<T> == ref<T> for T = double and float: outputs, saved statistics, updated state, gradients
//   acc     the gradient rule: gradients prefilled with g0 give g0 + the fresh gradient (every *_backward +=); each
//           gradient alone (the others nullptr) equals its value computed with all; all nullptr is a no-op
//   guards  every buffer sits between sentinel NaNs: they are untouched after the calls (no overrun), no output
//           element is left unwritten, and everything is finite (an input read past its end would bring a NaN in)
//   alias   outputs the header lets alias an input (out == in) give the same bits in place
//   cuda    (test_cuda_ops.cpp) cuda<float> == cpu<float>, and guards, acc and alias on the device
// test_op_harness.cpp registers OpHarness/<case>.<check>, test_cuda_ops.cpp OpHarnessCuda/<case>.cuda.
// The buffers live in the backend's memory (Bk::alloc / upload / download), so the same code drives the GPU.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gradcheck.h"
#include "ops/backend.h"

namespace mae::test {

// ---- how a tensor is filled: n values from a seed (rounded to float by the harness, so every backend and
// precision sees the same numbers) ----
using Gen = std::function<Vec(size_t n, unsigned seed)>;

inline Gen normal(double scale = 1.0, double mean = 0.0) {
  return [=](size_t n, unsigned seed) {
    Vec v = randn(n, seed, scale);
    for (auto& x : v) x += mean;
    return v;
  };
}
inline Gen uniform(double lo, double hi) {
  return [=](size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> d(lo, hi);
    Vec v(n);
    for (auto& x : v) x = d(g);
    return v;
  };
}
// Exactly these values (their count must be the tensor's size).
inline Gen values(Vec v) {
  return [v = std::move(v)](size_t n, unsigned) {
    EXPECT_EQ(v.size(), n) << "values(): wrong count";
    return v;
  };
}

// ---- a case: the tensors of one call and how the op is called ----
enum class Role {
  in,     // input with a gradient (perturbed by fd; backward's grad(i))
  param,  // input without a gradient (mask, targets, scales, fixed tables)
  idx,    // int32 input (ids_shuffle, ids_restore)
  io,     // state updated in place by forward (running stats, AdamW p/m/v): reset from its values before each call
  out,    // forward output with an upstream gradient (backward's dout(i))
  saved,  // forward output that backward reads but does not differentiate (mean, rstd, att, probs)
  tmp,    // workspace: sentinel-filled before every call, contents undefined
};

struct TensorSpec {
  std::string name;
  Role role;
  size_t n;  // 0 = the op gets nullptr (optional bias, no drop-path scale)
  Gen gen;
};

// Tolerances. cpu: |got − want| ≤ tol·|want| + tol·max|want| per element (elements that cancel to ~0 are judged at
// the tensor's scale); cuda: ‖got − want‖ / ‖want‖ ≤ tol per tensor (0 means bit for bit in both).
struct Tol {
  double cpu_fwd[2] = {1e-12, 1e-5}, cpu_bwd[2] = {1e-12, 1e-5};  // [double, float]
  double acc[2] = {1e-14, 1e-6};
  double cuda_fwd = 1e-5, cuda_bwd = 1e-5;
  double fd_rtol = 1e-6, fd_atol = 1e-8;  // as the gradcheck.h users: eps 1e-6 central differences in double
};

struct NoBackward {};
template <class F, class B> struct OpCase;

struct CaseSpec {
  std::string family, name;
  std::vector<TensorSpec> ts;
  std::vector<std::string> rets;            // returned scalars (masked_mse_forward, softmax_xent_forward)
  std::vector<std::pair<int, int>> aliases;  // (output index, input index) the op allows to be the same buffer
  Tol tol;

  // name = family_K1V1_K2V2[_variant], e.g. layernorm_N5_C11, linear_N5_I7_O3_nobias
  CaseSpec(std::string fam, std::initializer_list<std::pair<const char*, long>> dims, const std::string& variant = "")
      : family(std::move(fam)), name(family) {
    for (const auto& [k, v] : dims) name.append("_").append(k).append(std::to_string(v));
    if (!variant.empty()) name.append("_").append(variant);
  }
  CaseSpec& in(const std::string& n, size_t size, Gen g = normal()) { return add(n, Role::in, size, std::move(g)); }
  CaseSpec& param(const std::string& n, size_t size, Gen g = normal()) {
    return add(n, Role::param, size, std::move(g));
  }
  CaseSpec& idx(const std::string& n, size_t size, Gen g) { return add(n, Role::idx, size, std::move(g)); }
  CaseSpec& io(const std::string& n, size_t size, Gen g = normal()) { return add(n, Role::io, size, std::move(g)); }
  CaseSpec& out(const std::string& n, size_t size) { return add(n, Role::out, size, {}); }
  CaseSpec& saved(const std::string& n, size_t size) { return add(n, Role::saved, size, {}); }
  CaseSpec& tmp(const std::string& n, size_t size) { return add(n, Role::tmp, size, {}); }
  CaseSpec& ret(const std::string& n) {
    rets.push_back(n);
    return *this;
  }
  CaseSpec& alias(int out_index, int in_index) {
    aliases.emplace_back(out_index, in_index);
    return *this;
  }
  CaseSpec& tol_cpu(double d, double f) { return tol_cpu_fwd(d, f).tol_cpu_bwd(d, f); }
  CaseSpec& tol_cpu_fwd(double d, double f) {
    tol.cpu_fwd[0] = d, tol.cpu_fwd[1] = f;
    return *this;
  }
  CaseSpec& tol_cpu_bwd(double d, double f) {
    tol.cpu_bwd[0] = d, tol.cpu_bwd[1] = f;
    return *this;
  }
  CaseSpec& tol_cuda(double fwd, double bwd) {
    tol.cuda_fwd = fwd, tol.cuda_bwd = bwd;
    return *this;
  }
  CaseSpec& tol_fd(double rtol, double atol) {
    tol.fd_rtol = rtol, tol.fd_atol = atol;
    return *this;
  }
  // The calls, each a generic lambda [=]<class Bk, class T>(Bk, Args<T>& a) (MAE_KERNEL below).
  template <class F, class B = NoBackward> OpCase<F, B> ops(F fwd, B bwd = {}) const { return {*this, fwd, bwd}; }

  // Tensor indices with one of the roles, in declaration order (the Args index spaces).
  std::vector<int> where(std::initializer_list<Role> roles) const {
    std::vector<int> r;
    for (size_t i = 0; i < ts.size(); ++i)
      if (std::find(roles.begin(), roles.end(), ts[i].role) != roles.end()) r.push_back(int(i));
    return r;
  }
  size_t grad_elems() const {
    size_t s = 0;
    for (const auto& t : ts) s += t.role == Role::in ? t.n : 0;
    return s;
  }
  // Finite differences cost two forwards per input element: only small cases get them (each op has some).
  static constexpr size_t kFdMaxElems = 4096;
  unsigned seed() const {  // FNV-1a of the name: every check of a case sees the same data
    unsigned h = 2166136261u;
    for (char ch : name) h = (h ^ unsigned(char(ch))) * 16777619u;
    return h;
  }

 private:
  CaseSpec& add(const std::string& n, Role r, size_t size, Gen g) {
    ts.push_back({n, r, size, std::move(g)});
    return *this;
  }
};

template <class F, class B> struct OpCase : CaseSpec {
  F fwd;
  B bwd;
  static constexpr bool has_backward = !std::is_same_v<B, NoBackward>;
  bool fd_applies() const { return has_backward && grad_elems() > 0 && grad_elems() <= kFdMaxElems; }
};

// What a kernel sees: pointers in the backend's memory, per index space (in(i) counts inputs and parameters in
// declaration order, grad(i) is parallel to it; out(i) counts outputs and saved statistics, dout(i) is parallel).
// A tensor of size 0, a parameter's gradient, a saved statistic's dout and a gradient switched off are nullptr.
template <class T> struct Args {
  std::vector<const T*> ins, douts;
  std::vector<T*> grads, outs, ios, tmps;
  std::vector<const int*> idxs;
  std::vector<T> rets, drets;
  const T* in(int i) const { return ins.at(i); }
  T* grad(int i) const { return grads.at(i); }
  T* out(int i) const { return outs.at(i); }
  const T* dout(int i) const { return douts.at(i); }
  T* io(int i) const { return ios.at(i); }
  const int* idx(int i) const { return idxs.at(i); }
  T* tmp(int i) const { return tmps.at(i); }
  T& ret(int i) { return rets.at(i); }
  T dret(int i) const { return drets.at(i); }
};
// A forward or backward of a case: `MAE_KERNEL { Bk::gelu_forward(a.out(0), a.in(0), n); }`.
#define MAE_KERNEL [=]<class Bk, class T>(Bk, ::mae::test::Args<T> & a)

// ---- buffers with guards ----
constexpr size_t kGuard = 32;  // sentinel elements on each side (keeps 64-byte alignment for float and double)
// NaNs with payloads no arithmetic produces: one around what the op reads, another around what it writes (and
// in what it must write), so an overrun that copies or adds a read guard into a written one still shows.
enum class Side { read, written };
template <class E> E sentinel(Side s = Side::written) {
  const bool w = s == Side::written;
  if constexpr (std::is_same_v<E, float>) return std::bit_cast<float>(w ? 0x7fcafe5du : 0x7fbeef5du);
  else if constexpr (std::is_same_v<E, double>)
    return std::bit_cast<double>(w ? 0x7ff8cafe5dcafe5dull : 0x7ff8beef5dbeef5dull);
  else return E(w ? 0x7cafe5d : 0x7beef5d);
}
template <class E> bool is_sentinel(const E& x, Side side = Side::written) {
  const E s = sentinel<E>(side);
  return std::memcmp(&x, &s, sizeof(E)) == 0;
}

// n elements of E in Bk's memory between two guards of kGuard sentinels.
template <class Bk, class E> class Buffer {
 public:
  Buffer(size_t n, Side side) : n_(n), side_(side) {
    if (!n_) return;
    base_ = Bk::template alloc<E>(n_ + 2 * kGuard);
    const std::vector<E> s(n_ + 2 * kGuard, sentinel<E>(side_));
    Bk::upload(base_, s.data(), s.size());
  }
  ~Buffer() {
    if (base_) Bk::release(base_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  E* p() const { return n_ ? base_ + kGuard : nullptr; }
  size_t size() const { return n_; }
  void set(const std::vector<E>& v) {
    if (n_) Bk::upload(p(), v.data(), n_);
  }
  void fill(E x) { set(std::vector<E>(n_, x)); }
  std::vector<E> get() const {
    std::vector<E> v(n_);
    if (n_) Bk::download(v.data(), p(), n_);
    return v;
  }
  // Elements of the guards that are no longer the sentinel (written past either end).
  size_t guards_hit() const {
    if (!n_) return 0;
    std::vector<E> all(n_ + 2 * kGuard);
    Bk::download(all.data(), base_, all.size());
    size_t hit = 0;
    for (size_t i = 0; i < kGuard; ++i)
      hit += !is_sentinel(all[i], side_) + !is_sentinel(all[kGuard + n_ + i], side_);
    return hit;
  }

 private:
  size_t n_;
  Side side_;
  E* base_ = nullptr;
};

// Host values of a case: per tensor its values (inputs, parameters, indices, state) or, for an output with a
// gradient, the upstream gradient r of the projection f = Σ r ⊙ out; per returned scalar its upstream gradient.
struct Data {
  std::vector<Vec> v;
  Vec dret;
};
inline Data make_data(const CaseSpec& c) {
  Data d;
  const unsigned seed = c.seed();
  for (size_t i = 0; i < c.ts.size(); ++i) {
    const TensorSpec& t = c.ts[i];
    Vec v;
    if (t.role == Role::out) v = randn(t.n, seed + 1000 + unsigned(i));
    else if (t.gen) v = t.gen(t.n, seed + 17 * unsigned(i));
    for (auto& x : v) x = double(float(x));  // representable in float: ref<double> sees what cpu<float> sees
    d.v.push_back(std::move(v));
  }
  for (size_t r = 0; r < c.rets.size(); ++r) d.dret.push_back(double(float(randn(1, seed + 2000 + unsigned(r))[0])));
  return d;
}
// Gradient start values per tensor (empty for tensors without a gradient).
inline std::vector<Vec> prefill(const CaseSpec& c, double scale) {
  std::vector<Vec> g(c.ts.size());
  for (size_t i = 0; i < c.ts.size(); ++i)
    if (c.ts[i].role == Role::in) {
      g[i] = randn(c.ts[i].n, c.seed() + 3000 + unsigned(i), scale);
      for (auto& x : g[i]) x = double(float(x));
    }
  return g;
}

// Named results of a run, in double.
using Results = std::vector<std::pair<std::string, Vec>>;

// One case on one backend: its buffers, and forward/backward calls on them.
template <class Bk> class CaseRun {
 public:
  using T = typename Bk::T;

  explicit CaseRun(const CaseSpec& c) : c_(c) {
    for (const TensorSpec& t : c.ts) {
      const bool is_idx = t.role == Role::idx;
      const Side side = t.role == Role::in || t.role == Role::param || is_idx ? Side::read : Side::written;
      val_.push_back(std::make_unique<Buffer<Bk, T>>(is_idx ? 0 : t.n, side));
      ival_.push_back(std::make_unique<Buffer<Bk, int>>(is_idx ? t.n : 0, side));
      grad_.push_back(std::make_unique<Buffer<Bk, T>>(t.role == Role::in ? t.n : 0, Side::written));
      dout_.push_back(std::make_unique<Buffer<Bk, T>>(t.role == Role::out ? t.n : 0, Side::read));
    }
    for (int i : c.where({Role::in, Role::param})) a_.ins.push_back(val_[i]->p()), a_.grads.push_back(nullptr);
    for (int i : c.where({Role::out, Role::saved})) a_.outs.push_back(val_[i]->p()), a_.douts.push_back(dout_[i]->p());
    for (int i : c.where({Role::io})) a_.ios.push_back(val_[i]->p());
    for (int i : c.where({Role::tmp})) a_.tmps.push_back(val_[i]->p());
    for (int i : c.where({Role::idx})) a_.idxs.push_back(ival_[i]->p());
    a_.rets.assign(c.rets.size(), T(0));
  }

  // Inputs and state from d, outputs and workspace sentinel-filled, then the call. alias = (output, input): the
  // output is written into that input's buffer.
  template <class F> void forward(const F& fwd, const Data& d, std::pair<int, int> alias = {-1, -1}) {
    for (size_t i = 0; i < c_.ts.size(); ++i) {
      const Role r = c_.ts[i].role;
      if (r == Role::in || r == Role::param || r == Role::io) val_[i]->set(cast<T>(d.v[i]));
      else if (r == Role::idx) ival_[i]->set(std::vector<int>(d.v[i].begin(), d.v[i].end()));
      else val_[i]->fill(sentinel<T>());
    }
    Args<T> a = a_;
    if (alias.first >= 0) a.outs.at(alias.first) = const_cast<T*>(a.ins.at(alias.second));
    fwd(Bk{}, a);
    rets_ = a.rets;
  }

  // Gradients start at g0 (nullptr: zero); on[k] switches grad(k) on (empty: all on).
  template <class B>
  void backward(const B& bwd, const Data& d, const std::vector<Vec>* g0 = nullptr, std::vector<bool> on = {}) {
    Args<T> a = a_;
    a.rets = rets_;
    for (size_t r = 0; r < d.dret.size(); ++r) a.drets.push_back(T(d.dret[r]));
    for (size_t i = 0; i < c_.ts.size(); ++i) {
      const Role r = c_.ts[i].role;
      if (r == Role::out) dout_[i]->set(cast<T>(d.v[i]));
      if (r == Role::tmp) val_[i]->fill(sentinel<T>());
      if (r == Role::in) grad_[i]->set(g0 ? cast<T>((*g0)[i]) : std::vector<T>(c_.ts[i].n, T(0)));
    }
    const std::vector<int> ins = c_.where({Role::in, Role::param});
    for (size_t k = 0; k < ins.size(); ++k)
      if (on.empty() || on[k]) a.grads[k] = grad_[ins[k]]->p();
    bwd(Bk{}, a);
  }

  // f = Σ r ⊙ out + Σ dret · ret: the scalar whose gradient backward computes. abs: Σ |r ⊙ out| + Σ |dret · ret|
  // instead (the size of the rounding errors in f).
  double projection(const Data& d, bool abs = false) const {
    double f = 0;
    auto term = [&](double x) { f += abs ? std::abs(x) : x; };
    for (int i : c_.where({Role::out})) {
      const std::vector<T> y = val_[i]->get();
      for (size_t e = 0; e < y.size(); ++e) term(d.v[i][e] * double(y[e]));
    }
    for (size_t r = 0; r < rets_.size(); ++r) term(d.dret[r] * double(rets_[r]));
    return f;
  }

  // Outputs, saved statistics, updated state and returned scalars (after forward); alias: read that output from
  // the input buffer it was written to.
  Results outputs(std::pair<int, int> alias = {-1, -1}) const {
    Results r;
    const std::vector<int> outs = c_.where({Role::out, Role::saved}), ins = c_.where({Role::in, Role::param});
    for (size_t k = 0; k < outs.size(); ++k) {
      const int i = int(k) == alias.first ? ins.at(alias.second) : outs[k];
      r.emplace_back("out " + c_.ts[outs[k]].name, to_vec(val_[i]->get()));
    }
    for (int i : c_.where({Role::io})) r.emplace_back("state " + c_.ts[i].name, to_vec(val_[i]->get()));
    for (size_t k = 0; k < rets_.size(); ++k) r.emplace_back("returned " + c_.rets[k], Vec{double(rets_[k])});
    return r;
  }
  Results grads() const {
    Results r;
    for (int i : c_.where({Role::in})) r.emplace_back("grad " + c_.ts[i].name, to_vec(grad_[i]->get()));
    return r;
  }
  Vec grad(int tensor) const { return to_vec(grad_[tensor]->get()); }

  // The guards of every buffer are intact.
  void expect_guards(const std::string& what) const {
    for (size_t i = 0; i < c_.ts.size(); ++i) {
      const size_t hit = val_[i]->guards_hit() + ival_[i]->guards_hit() + grad_[i]->guards_hit() +
                         dout_[i]->guards_hit();
      EXPECT_EQ(hit, 0u) << what << ": " << hit << " guard elements around " << c_.ts[i].name << " overwritten";
    }
  }
  // Every element of r written and finite.
  static void expect_written(const Results& r, const std::string& what) {
    for (const auto& [name, v] : r) {
      size_t unwritten = 0, bad = 0;
      for (double x : v) unwritten += is_sentinel(T(x)), bad += !std::isfinite(x);
      EXPECT_EQ(unwritten, 0u) << what << ": " << name << " has elements never written";
      EXPECT_EQ(bad, 0u) << what << ": " << name << " has non-finite elements";
    }
  }

 private:
  template <class E> static Vec to_vec(const std::vector<E>& v) { return Vec(v.begin(), v.end()); }
  const CaseSpec& c_;
  std::vector<std::unique_ptr<Buffer<Bk, T>>> val_, grad_, dout_;
  std::vector<std::unique_ptr<Buffer<Bk, int>>> ival_;
  Args<T> a_;
  std::vector<T> rets_;
};

// ---- comparisons ----
// Elementwise: |got − want| ≤ tol·|want| + tol·max|want|.
template <class A, class B> void expect_near(const A& got, const B& want, double tol, const std::string& what) {
  double scale = 0;
  for (const auto& w : want) scale = std::max(scale, std::abs(double(w)));
  expect_close(got, want, tol, tol * scale + 1e-300, what);
}
enum class Metric { elementwise, rel_l2 };
inline void expect_results(const Results& got, const Results& want, double tol, Metric m, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k) {
    const std::string tag = what + ": " + want[k].first;
    if (m == Metric::elementwise) expect_near(got[k].second, want[k].second, tol, tag);
    else if (tol == 0) EXPECT_EQ(got[k].second, want[k].second) << tag;
    else EXPECT_LE(rel_l2(got[k].second, want[k].second), tol) << tag;
  }
}

// ---- the checks ----
// fd: the ref backward in double against central differences of the projection, for every input with a gradient.
// Besides the tolerances of the case, the absolute one grows by the rounding of the difference quotient:
// f's rounding error (≈ 1e-16 · Σ|terms|) over the step (1e-6).
template <class C> void check_fd(const C& c) {
  if constexpr (C::has_backward) {
    Data d = make_data(c);
    CaseRun<RefBackend<double>> run(c);
    auto f = [&] {
      run.forward(c.fwd, d);
      return run.projection(d);
    };
    f();
    const double atol = c.tol.fd_atol + 1e-10 * run.projection(d, true);
    run.backward(c.bwd, d);
    for (int i : c.where({Role::in})) {
      const Vec analytic = run.grad(i);
      const Vec num = numeric_grad(d.v[i], f);
      expect_close(analytic, num, c.tol.fd_rtol, atol, "d" + c.ts[i].name + " vs finite differences");
    }
  }
}

// Forward then (if any) backward from g0, on one backend: outputs and gradients.
template <class Bk, class C> Results run_case(const C& c, const Data& d, const std::vector<Vec>& g0) {
  CaseRun<Bk> run(c);
  run.forward(c.fwd, d);
  Results r = run.outputs();
  if constexpr (C::has_backward) {
    run.backward(c.bwd, d, &g0);
    for (auto& g : run.grads()) r.push_back(std::move(g));
  }
  return r;
}
// Got against Want on the same data and gradient start values (non-zero: the += rule takes part).
template <class Got, class Want, class C>
void compare(const C& c, double tol_fwd, double tol_bwd, Metric m, const std::string& what) {
  const Data d = make_data(c);
  const std::vector<Vec> g0 = prefill(c, 1.0);
  const Results got = run_case<Got>(c, d, g0), want = run_case<Want>(c, d, g0);
  const size_t nf = got.size() - (C::has_backward ? c.where({Role::in}).size() : 0);
  expect_results(Results(got.begin(), got.begin() + nf), Results(want.begin(), want.begin() + nf), tol_fwd, m, what);
  expect_results(Results(got.begin() + nf, got.end()), Results(want.begin() + nf, want.end()), tol_bwd, m, what);
}
template <class C> void check_cpu(const C& c) {
  compare<CpuBackend<double>, RefBackend<double>>(c, c.tol.cpu_fwd[0], c.tol.cpu_bwd[0], Metric::elementwise,
                                                  "cpu vs ref, double");
  compare<CpuBackend<float>, RefBackend<float>>(c, c.tol.cpu_fwd[1], c.tol.cpu_bwd[1], Metric::elementwise,
                                                "cpu vs ref, float");
}

// acc: backward(g0) == g0 + backward(0); each gradient alone == with all; none at all: nothing happens.
template <class Bk, class C> void check_accumulate(const C& c, double tol) {
  if constexpr (C::has_backward) {
    const std::string be = std::string(Bk::name) + (sizeof(typename Bk::T) == 4 ? " float" : " double");
    const Data d = make_data(c);
    CaseRun<Bk> run(c);
    run.forward(c.fwd, d);
    run.backward(c.bwd, d);
    const Results fresh = run.grads();
    const std::vector<Vec> g0 = prefill(c, 10.0);
    run.backward(c.bwd, d, &g0);
    const Results acc = run.grads();
    const std::vector<int> ins = c.where({Role::in, Role::param});
    for (size_t k = 0, j = 0; k < ins.size(); ++k) {
      if (c.ts[ins[k]].role != Role::in) continue;
      Vec want = fresh[j].second;
      for (size_t e = 0; e < want.size(); ++e) want[e] += g0[ins[k]][e];
      expect_near(acc[j].second, want, tol, be + ": " + acc[j].first + " accumulates");
      std::vector<bool> alone(ins.size(), false);
      alone[k] = true;
      run.backward(c.bwd, d, nullptr, alone);
      expect_near(run.grad(ins[k]), fresh[j].second, tol, be + ": " + fresh[j].first + " alone");
      ++j;
    }
    run.backward(c.bwd, d, nullptr, std::vector<bool>(ins.size(), false));  // all nullptr: must not crash
    run.expect_guards(be + " backward");
  }
}

// guards: after forward and backward, no guard touched, every output written, everything finite.
template <class Bk, class C> void check_guards(const C& c) {
  const std::string be = std::string(Bk::name) + (sizeof(typename Bk::T) == 4 ? " float" : " double");
  const Data d = make_data(c);
  CaseRun<Bk> run(c);
  run.forward(c.fwd, d);
  run.expect_guards(be + " forward");
  CaseRun<Bk>::expect_written(run.outputs(), be + " forward");
  if constexpr (C::has_backward) {
    const std::vector<Vec> g0 = prefill(c, 1.0);
    run.backward(c.bwd, d, &g0);
    run.expect_guards(be + " backward");
    CaseRun<Bk>::expect_written(run.grads(), be + " backward");
  }
}

// alias: each allowed (output, input) aliasing gives the same bits as separate buffers.
template <class Bk, class C> void check_alias(const C& c) {
  const Data d = make_data(c);
  CaseRun<Bk> plain(c);
  plain.forward(c.fwd, d);
  const Results want = plain.outputs();
  for (const auto& al : c.aliases) {
    CaseRun<Bk> run(c);
    run.forward(c.fwd, d, al);
    const std::string what = std::string(Bk::name) + (sizeof(typename Bk::T) == 4 ? " float" : " double") + ": " +
                             c.ts[c.where({Role::out, Role::saved})[al.first]].name + " written over " +
                             c.ts[c.where({Role::in, Role::param})[al.second]].name;
    expect_results(run.outputs(al), want, 0, Metric::rel_l2, what);
    run.expect_guards(what);
  }
}

// f.template operator()<Bk>() for the four host backends (ref and cpu, double and float).
template <class F> void for_each_host_backend(F&& f) {
  f.template operator()<RefBackend<double>>();
  f.template operator()<CpuBackend<double>>();
  f.template operator()<RefBackend<float>>();
  f.template operator()<CpuBackend<float>>();
}

// ---- registration: one gtest test per (case, check), named <suite>/<case>.<check> ----
class HarnessTest : public ::testing::Test {
 public:
  explicit HarnessTest(std::function<void()> body) : body_(std::move(body)) {}
  void TestBody() override { body_(); }

 private:
  std::function<void()> body_;
};
inline void register_check(const std::string& suite, const std::string& check, std::function<void()> body) {
  ::testing::RegisterTest(suite.c_str(), check.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [body]() -> HarnessTest* { return new HarnessTest(body); });
}

// ---- for the hand-written op tests: the same body on both host backends ----
// for_host_backends<double>([&]<class Bk>() { Bk::gelu_forward(...); ... << Bk::name; });
template <class T, class F> void for_host_backends(F&& f) {
  f.template operator()<RefBackend<T>>();
  f.template operator()<CpuBackend<T>>();
}

}  // namespace mae::test
