// Test helpers shared by the op tests: random tensors, finite differences in double precision, and closeness
// checks that report the worst element.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace mae::test {

using Vec = std::vector<double>;

inline Vec randn(size_t n, unsigned seed, double scale = 1.0) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, scale);
  Vec v(n);
  for (auto& x : v) x = d(g);
  return v;
}

template <class T> std::vector<T> cast(const Vec& v) { return std::vector<T>(v.begin(), v.end()); }
// randn in float, for the tests of float-only paths (bf16, oneDNN)
inline std::vector<float> randn_f(size_t n, unsigned seed) { return cast<float>(randn(n, seed)); }

// Central-difference gradient of the scalar f() with respect to every element of x (x is perturbed in place and
// restored). eps 1e-6 in double gives ~1e-9 relative accuracy for smooth ops.
inline Vec numeric_grad(Vec& x, const std::function<double()>& f, double eps = 1e-6) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + eps;
    const double fp = f();
    x[i] = x0 - eps;
    const double fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

// Σ r ⊙ y: a random projection turns an op with tensor output into a scalar whose gradient wrt y is r.
inline double dot(const Vec& r, const Vec& y) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += r[i] * y[i];
  return s;
}
template <class T> double dot(const Vec& r, const std::vector<T>& y) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += r[i] * double(y[i]);
  return s;
}

// |a − b| ≤ atol + rtol·|b| elementwise; on failure names the worst index.
template <class A, class B>
void expect_close(const A& a, const B& b, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double worst = 0;
  size_t wi = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(double(a[i]) - double(b[i])) - rtol * std::abs(double(b[i]));
    if (!(err <= worst) ) { worst = err; wi = i; }  // NaN lands here too
  }
  EXPECT_LE(worst, atol) << what << ": worst at [" << wi << "] got " << double(a[wi]) << " want " << double(b[wi]);
}

// ‖a − b‖ / ‖b‖
template <class A, class B> double rel_l2(const A& a, const B& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

}  // namespace mae::test
