// The `rollouts:` section of `greenlight run`: the services the controller rolls out, how it
// reaches their router, how it checks a new release, and the strategy.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "greenlight/common/config_reader.h"
#include "greenlight/common/sealed.h"
#include "greenlight/controller/rollout.h"
#include "greenlight/controller/router.h"

namespace greenlight::controller {

enum class RouterKind { kBuiltin, kHaproxy };

// A Prometheus query judged at each analysis: `{service}`, `{color}`, `{release}` in the query
// are replaced; the first sample of the result must satisfy `success` ("< 0.01", ">= 0.99").
struct PrometheusCheck {
  std::string name;
  std::string query;
  std::string op;   // <, <=, >, >=, ==, !=
  double threshold = 0;
  NoDataPolicy no_data = NoDataPolicy::kInconclusive;  // an empty result
};

// A webhook gate (like Flagger's): POSTed {"service","release","color","gate","phase","weight"};
// 2xx means go (or, for `rollback`, "roll back now"). What a timeout or unreachable gate means:
// fail, pass, or wait (ask again at the next interval).
enum class GateTimeout { kFail, kPass, kWait };
struct GateSpec {
  std::string url;
  Duration timeout{std::chrono::seconds(10)};
  GateTimeout on_timeout = GateTimeout::kFail;
};

struct ServiceSpec {
  RolloutSpec rollout;  // name, strategy, analysis
  // Before the first rollout (no state saved yet): which colour serves, and what it runs.
  Color initial_stable = Color::kBlue;
  std::string initial_release;
  RouterKind router = RouterKind::kBuiltin;
  BuiltinRouterSpec builtin;
  HaproxyRouterSpec haproxy;
  Duration router_timeout{std::chrono::seconds(2)};
  std::vector<std::string> endpoints[2];  // blue, green: host:port of each release's instances
  std::string ready_path = "/health";     // GET on every candidate endpoint must answer 2xx
  Duration ready_timeout{std::chrono::seconds(2)};
  std::string preview_url;                // through the router, e.g. http://127.0.0.1:8080/health
  std::string preview_header = "X-Greenlight-Color";
  // How a release is started and stopped: shell command templates with {service}, {color},
  // {release}, {port}; both empty: `external` (CI deploys; the controller verifies and shifts).
  std::string deploy_start, deploy_stop;
  Duration deploy_timeout{std::chrono::minutes(5)};
  // Gates by name: pre-rollout, confirm-promotion, post-rollout, rollback.
  std::map<std::string, GateSpec> gates;
  // Probes (by name, from `probes:`) run once at pre-promotion and at every analysis with the
  // preview header naming the colour under analysis; each must pass.
  std::vector<std::string> analysis_probes;
  std::string prometheus_url;  // e.g. http://prometheus:9090; empty: no query checks
  std::vector<PrometheusCheck> prometheus_checks;
};

struct ControllerConfig {
  bool enabled = false;
  std::string state_dir;   // rollouts.json; empty: memory only
  std::optional<AesKey> state_key;  // from the top-level state_encryption: seals rollouts.json
  std::string audit_log;   // empty: state_dir/audit.log, or none without state_dir
  Duration tick{std::chrono::milliseconds(500)};
  std::vector<ServiceSpec> services;
};

ControllerConfig parseControllerConfig(ConfigReader& r, const YAML::Node& node, const std::string& field);

}  // namespace greenlight::controller
