// Decides whether a probe is healthy from its recent results, with thresholds against flapping.
// Pure: no clock, no I/O. Thread-compatible.
#pragma once

namespace greenlight::probes {

struct HealthPolicy {
  int failure_threshold = 3;  // consecutive failed runs to turn unhealthy
  int success_threshold = 1;  // consecutive passed runs to recover
};

enum class Health { kUnknown, kHealthy, kUnhealthy };
enum class HealthTransition { kNone, kBecameHealthy, kBecameUnhealthy };

struct HealthState {
  Health health = Health::kUnknown;
  int consecutive_failures = 0;
  int consecutive_successes = 0;
};

// From kUnknown the first success is enough (there is nothing to recover from).
HealthState nextHealth(const HealthPolicy& policy, const HealthState& prev, bool run_ok);
HealthTransition transitionOf(const HealthState& prev, const HealthState& next);
const char* healthName(Health h);

}  // namespace greenlight::probes
