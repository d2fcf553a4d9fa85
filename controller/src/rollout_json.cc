#include "rollout_json.h"
#include "greenlight/common/time_format.h"

#include "greenlight/controller/controller.h"

namespace greenlight::controller {

using nlohmann::json;

namespace {
}  // namespace

json stateToJson(const RolloutState& s) {
  return {{"service", s.service},
          {"phase", phaseName(s.phase)},
          {"stable", colorName(s.stable)},
          {"stable_release", s.stable_release},
          {"candidate_release", s.candidate_release},
          {"previous_release", s.previous_release},
          {"step", s.step},
          {"weight", s.weight},
          {"paused", s.paused},
          {"awaiting_promotion", s.awaiting_promotion},
          {"gate_passed", s.gate_passed},
          {"mirroring", s.mirroring},
          {"phase_since_ms", toUnixMillis(s.phase_since)},
          {"started_at_ms", toUnixMillis(s.started_at)},
          {"measure_at_ms", toUnixMillis(s.measure_at)},
          {"passes", s.passes},
          {"failures", s.failures},
          {"inconclusive", s.inconclusive},
          {"results", s.results},
          {"reason", s.reason}};
}

StatusOr<RolloutState> stateFromJson(const json& j) {
  try {
    RolloutState s;
    s.service = j.at("service").get<std::string>();
    auto phase = parsePhase(j.at("phase").get<std::string>());
    auto stable = parseColor(j.at("stable").get<std::string>());
    if (!phase || !stable) return InvalidArgument("unknown phase or colour");
    s.phase = *phase;
    s.stable = *stable;
    s.stable_release = j.at("stable_release").get<std::string>();
    s.candidate_release = j.at("candidate_release").get<std::string>();
    s.previous_release = j.value("previous_release", "");
    s.step = j.at("step").get<int>();
    s.weight = j.at("weight").get<int>();
    if (s.weight < 0 || s.weight > 100) return InvalidArgument("weight out of range");
    s.paused = j.at("paused").get<bool>();
    s.awaiting_promotion = j.value("awaiting_promotion", false);
    s.gate_passed = j.value("gate_passed", false);
    s.mirroring = j.value("mirroring", false);
    s.phase_since = fromUnixMillis(j.at("phase_since_ms").get<int64_t>());
    s.measure_at = fromUnixMillis(j.at("measure_at_ms").get<int64_t>());
    s.started_at = fromUnixMillis(j.value("started_at_ms", int64_t{0}));
    s.passes = j.value("passes", 0);
    s.failures = j.value("failures", 0);
    s.inconclusive = j.value("inconclusive", 0);
    s.results = j.value("results", std::vector<std::string>{});
    s.reason = j.value("reason", "");
    return s;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad rollout state: ") + e.what());
  }
}

std::string servicesToJson(const std::vector<ServiceView>& views, WallTime now) {
  json out = json::array();
  for (const auto& v : views) {
    json j = stateToJson(v.state);
    j.erase("measure_at_ms");
    j.erase("phase_since_ms");
    j.erase("started_at_ms");
    j["started_at"] = v.state.started_at == WallTime{} ? json(nullptr) : json(toUnixMillis(v.state.started_at) / 1000.0);
    j["router"] = v.router;
    j["candidate"] = colorName(v.state.candidate());
    j["weights"] = {{colorName(v.state.candidate()), v.state.weight}, {colorName(v.state.stable), 100 - v.state.weight}};
    j["seconds_in_phase"] = v.state.phase_since == WallTime{} ? json(nullptr)  // never left idle
                                                              : json(std::chrono::duration<double>(now - v.state.phase_since).count());
    j["steps"] = v.strategy.steps;
    out.push_back(j);
  }
  return out.dump();
}

}  // namespace greenlight::controller
