#include "greenlight/common/auth_throttle.h"

#include <algorithm>

namespace greenlight {

Duration AuthThrottle::blockedFor(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return Duration::zero();
  const MonoTime now = time_.monotonicNow();
  return it->second.locked_until > now ? it->second.locked_until - now : Duration::zero();
}

bool AuthThrottle::recordFailure(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  const MonoTime now = time_.monotonicNow();
  if (!clients_.count(client) && clients_.size() >= policy_.max_clients) {
    auto oldest = std::min_element(clients_.begin(), clients_.end(),
                                   [](const auto& a, const auto& b) { return a.second.last_seen < b.second.last_seen; });
    clients_.erase(oldest);
  }
  Client& c = clients_[client];
  c.last_seen = now;
  while (!c.failures.empty() && now - c.failures.front() >= policy_.window) c.failures.pop_front();
  c.failures.push_back(now);
  if (static_cast<int>(c.failures.size()) < policy_.limit) return false;
  c.failures.clear();
  c.locked_until = now + policy_.lockout;
  return true;
}

size_t AuthThrottle::tracked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_.size();
}

}  // namespace greenlight
