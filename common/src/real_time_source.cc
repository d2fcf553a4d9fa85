// The one place (with main) that reads the system clocks.
#include <random>

#include "greenlight/common/random.h"
#include "greenlight/common/time_source.h"

namespace greenlight {

MonoTime RealTimeSource::monotonicNow() const { return std::chrono::steady_clock::now(); }
WallTime RealTimeSource::wallNow() const { return std::chrono::system_clock::now(); }

DefaultRandom::DefaultRandom() : gen_(std::random_device{}()) {}

double DefaultRandom::uniform01() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen_);
}

}  // namespace greenlight
