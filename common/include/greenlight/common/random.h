// Randomness is injected (jitter, probe spreading) so tests are reproducible.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>

namespace greenlight {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Uniform in [0, 1).
  virtual double uniform01() = 0;
};

// Thread-safe Mersenne Twister, seeded from std::random_device unless a seed is given.
class DefaultRandom final : public RandomSource {
 public:
  DefaultRandom();
  explicit DefaultRandom(uint64_t seed) : gen_(seed) {}
  double uniform01() override;

 private:
  std::mutex mu_;
  std::mt19937_64 gen_;
};

}  // namespace greenlight
