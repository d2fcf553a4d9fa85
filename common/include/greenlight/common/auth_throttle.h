// Slows token guessing on the admin API: a client address that fails authentication `limit`
// times within `window` is refused (429) for `lockout` without its token being looked at, then
// starts over. Memory is bounded: at most `max_clients` addresses are tracked (the oldest is
// forgotten first), so a flood from many addresses cannot grow it. Thread-safe.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "greenlight/common/time_source.h"

namespace greenlight {

struct AuthThrottlePolicy {
  int limit = 10;
  Duration window{std::chrono::minutes(1)};
  Duration lockout{std::chrono::minutes(5)};
  size_t max_clients = 10000;
};

class AuthThrottle {
 public:
  AuthThrottle(const TimeSource& time, AuthThrottlePolicy policy = {}) : time_(time), policy_(policy) {}
  // How long `client` must still wait (zero: it may try).
  Duration blockedFor(const std::string& client);
  // A failed attempt; returns true if this one locked the client out.
  bool recordFailure(const std::string& client);
  size_t tracked() const;

 private:
  struct Client {
    std::deque<MonoTime> failures;  // within the window, oldest first
    MonoTime locked_until{};
    MonoTime last_seen{};
  };
  const TimeSource& time_;
  AuthThrottlePolicy policy_;
  mutable std::mutex mu_;
  std::map<std::string, Client> clients_;
};

}  // namespace greenlight
