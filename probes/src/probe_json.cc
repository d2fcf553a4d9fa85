#include "greenlight/probes/probe_json.h"

#include "greenlight/common/time_format.h"

#include <ctime>
#include <nlohmann/json.hpp>

namespace greenlight::probes {
namespace {

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

std::string probesToJson(const std::vector<ProbeStatus>& probes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : probes) {
    nlohmann::json j;
    j["name"] = p.spec->name;
    j["labels"] = nlohmann::json::object();
    for (const auto& [k, v] : p.spec->labels) j["labels"][k] = v;
    j["interval_seconds"] = toSeconds(p.spec->interval);
    j["health"] = healthName(p.health.health);
    j["consecutive_failures"] = p.health.consecutive_failures;
    j["recent"] = nlohmann::json::array();
    for (const auto& r : p.recent) j["recent"].push_back({{"duration_ms", r.duration_ms}, {"success", r.success}});
    if (p.last) {
      const ProbeResult& r = *p.last;
      nlohmann::json last;
      last["success"] = r.success;
      last["reason"] = reasonName(r.reason);
      last["message"] = r.message;
      last["started_at"] = formatRfc3339(r.started_at);
      last["duration_ms"] = ms(r.duration);
      last["attempts"] = r.attempts;
      last["steps"] = nlohmann::json::array();
      for (const auto& s : r.steps) {
        nlohmann::json sj;
        sj["name"] = s.name;
        sj["success"] = s.success;
        sj["reason"] = reasonName(s.reason);
        if (!s.message.empty()) sj["message"] = s.message;
        if (s.from_cache) sj["from_cache"] = true;
        sj["status"] = s.status;
        sj["duration_ms"] = ms(s.duration);
        sj["phases_ms"] = {{"resolve", ms(s.timings.resolve)},
                           {"connect", ms(s.timings.connect)},
                           {"tls", ms(s.timings.tls)},
                           {"processing", ms(s.timings.processing)},
                           {"transfer", ms(s.timings.transfer)}};
        if (s.cert_earliest_expiry) sj["certificate_expires_at"] = formatRfc3339(*s.cert_earliest_expiry);
        sj["conditions"] = nlohmann::json::array();
        for (const auto& c : s.conditions) {
          nlohmann::json cj{{"condition", c.condition}, {"passed", c.passed}, {"actual", c.actual}};
          if (!c.error.empty()) cj["error"] = c.error;
          sj["conditions"].push_back(std::move(cj));
        }
        last["steps"].push_back(std::move(sj));
      }
      j["last"] = std::move(last);
    }
    out.push_back(std::move(j));
  }
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace greenlight::probes
