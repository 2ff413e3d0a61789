// Counter-based random numbers: a generator is a 64-bit key plus a counter, and draw n is mix(key + n·γ) (the
// splitmix64 output function). Keys come from hashing (seed, a, b), so a stream such as "the augmentation of sample i
// in epoch e" is reproducible on its own, whatever the thread count or the order the samples are processed in, and
// a resumed run continues bit-identically from (key, counter).
#pragma once
#include <cmath>
#include <cstdint>

namespace mae {

// Stream tags: hash one into the seed (Rng::derive(seed, stream::X)) before keying, so that two users of the same
// (seed, epoch, index) triple never draw the same numbers. Add new tags here.
namespace stream {
constexpr uint64_t augment = 0x61756720;   // data: crop/flip of one sample, keyed (epoch, dataset index)
constexpr uint64_t shuffle = 0x73687566;   // data: per-epoch permutation, keyed (epoch, 0)
constexpr uint64_t mask = 0x6d61736b;      // model: masking noise
constexpr uint64_t init = 0x696e6974;      // model: parameter initialisation
constexpr uint64_t drop = 0x64726f70;      // model: drop path / dropout
constexpr uint64_t mixup = 0x6d697875;     // data: mixup/cutmix of one batch, keyed (epoch, batch index)
constexpr uint64_t shard = 0x73686172;     // data: the one-time sample order of `mae shard`, keyed (0, 0)
}  // namespace stream

class Rng {
 public:
  static constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;

  explicit Rng(uint64_t key = 0, uint64_t counter = 0) : key_(key), ctr_(counter) {}

  // splitmix64's finaliser (Stafford variant 13): a bijection with good avalanche.
  static constexpr uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Hash of an ordered pair; derive(seed, tag) separates streams that share a seed.
  static constexpr uint64_t derive(uint64_t a, uint64_t b) { return mix(mix(a + kGamma) ^ (b + 2 * kGamma)); }
  // Generator for the stream (seed, a, b), e.g. keyed(derive(seed, stream::augment), epoch, index).
  static Rng keyed(uint64_t seed, uint64_t a, uint64_t b) { return Rng(derive(derive(seed, a), b)); }

  uint64_t next_u64() { return mix(key_ + (++ctr_) * kGamma); }
  // [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // [0, 1) as float with 24 random bits (never rounds up to 1.0f, unlike float(uniform())).
  float uniform_f() { return float(next_u64() >> 40) * 0x1.0p-24f; }
  // Standard normal by Box–Muller; one value per two draws (no cached spare: the state stays (key, counter)).
  double normal() {
    double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }
  double normal(double mean, double std) { return mean + std * normal(); }
  // Unbiased integer in [0, n) (Lemire's multiply-and-reject); n must be > 0.
  uint64_t uniform_int(uint64_t n) {
    unsigned __int128 m = (unsigned __int128)next_u64() * n;
    uint64_t lo = uint64_t(m);
    if (lo < n) {
      uint64_t t = (0 - n) % n;
      while (lo < t) {
        m = (unsigned __int128)next_u64() * n;
        lo = uint64_t(m);
      }
    }
    return uint64_t(m >> 64);
  }

  // State for checkpoints.
  uint64_t key() const { return key_; }
  uint64_t counter() const { return ctr_; }

 private:
  uint64_t key_, ctr_;
};

}  // namespace mae
