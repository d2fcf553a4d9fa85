// Blocks kept on one event loop for its next users (private to the proxy module).
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

namespace greenlight::proxy {

// Blocks given back after use are kept, up to `cap`, for the next take(); trim(), called once a
// period by the owner's timer, frees those that were not needed since the last trim: the fewest
// kept at any moment since then. Steady traffic keeps what it uses; what a burst left behind is
// freed within two periods of the burst's end. Not thread-safe: one per event loop.
template <class T>
class SparePool {
 public:
  explicit SparePool(size_t cap) : cap_(cap) {}

  // A kept block (the one given back last), or null when none is kept.
  std::unique_ptr<T> take() {
    if (kept_.empty()) return nullptr;
    std::unique_ptr<T> t = std::move(kept_.back());
    kept_.pop_back();
    low_ = std::min(low_, kept_.size());
    return t;
  }
  // Keeps `t` for a later take(); false when the pool is full, `t` then left with the caller.
  bool give(std::unique_ptr<T>& t) {
    if (kept_.size() >= cap_) return false;
    kept_.push_back(std::move(t));
    return true;
  }
  // Frees the blocks no take() needed since the last trim (the oldest given back); how many.
  size_t trim() {
    const size_t n = low_;
    kept_.erase(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(n));
    low_ = kept_.size();
    return n;
  }
  size_t size() const { return kept_.size(); }

 private:
  size_t cap_;
  std::vector<std::unique_ptr<T>> kept_;
  size_t low_ = 0;  // the fewest kept at any moment since the last trim (never more than kept_)
};

}  // namespace greenlight::proxy
