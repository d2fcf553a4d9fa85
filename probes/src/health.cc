#include "greenlight/probes/health.h"

namespace greenlight::probes {

HealthState nextHealth(const HealthPolicy& policy, const HealthState& prev, bool run_ok) {
  HealthState next = prev;
  if (run_ok) {
    next.consecutive_successes = prev.consecutive_successes + 1;
    next.consecutive_failures = 0;
    if (prev.health == Health::kUnknown ||
        next.consecutive_successes >= policy.success_threshold) {
      next.health = Health::kHealthy;
    }
  } else {
    next.consecutive_failures = prev.consecutive_failures + 1;
    next.consecutive_successes = 0;
    if (next.consecutive_failures >= policy.failure_threshold) next.health = Health::kUnhealthy;
  }
  return next;
}

HealthTransition transitionOf(const HealthState& prev, const HealthState& next) {
  if (prev.health == next.health) return HealthTransition::kNone;
  if (next.health == Health::kHealthy) return HealthTransition::kBecameHealthy;
  if (next.health == Health::kUnhealthy) return HealthTransition::kBecameUnhealthy;
  return HealthTransition::kNone;
}

const char* healthName(Health h) {
  switch (h) {
    case Health::kUnknown: return "unknown";
    case Health::kHealthy: return "healthy";
    case Health::kUnhealthy: return "unhealthy";
  }
  return "unknown";
}

}  // namespace greenlight::probes
