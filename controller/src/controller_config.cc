#include "greenlight/controller/controller_config.h"

#include <regex>
#include <set>

namespace greenlight::controller {
namespace {

using R = ConfigReader;

bool validHostPort(const std::string& s) {
  static const std::regex re(R"([A-Za-z0-9.\-]+:[0-9]{1,5})");
  return std::regex_match(s, re);
}

void readStrategy(R& r, const YAML::Node& n, const std::string& f, StrategySpec* s) {
  if (!n.IsDefined()) return;
  if (!r.expectMap(n, f, {"steps", "bake", "auto_promote", "scale_down_delay", "progress_deadline", "preview_requests", "mirror"})) {
    return;
  }
  if (n["steps"].IsDefined()) {
    std::vector<int> steps;
    std::vector<std::optional<Duration>> bakes;
    std::vector<bool> pauses;
    int last = 0;
    bool ok = r.expectSequence(n["steps"], R::join(f, "steps"));
    for (size_t i = 0; ok && i < n["steps"].size(); ++i) {
      const YAML::Node item = n["steps"][i];
      const std::string sf = R::index(R::join(f, "steps"), i);
      int v = -1;
      std::optional<Duration> bake;
      bool pause = false;
      if (item.IsMap()) {
        // {weight: 50, bake: 5m, pause: true}: this step's own bake, and a manual gate after it.
        if (!r.expectMap(item, sf, {"weight", "bake", "pause"})) {
          ok = false;
          break;
        }
        if (auto w = r.getInt(item, sf, "weight", 1, 100, true)) v = static_cast<int>(*w);
        bake = r.getDuration(item, sf, "bake");
        pause = r.getBool(item, sf, "pause").value_or(false);
        if (v < 0) {
          ok = false;
          break;
        }
      } else {
        try {
          v = item.as<int>();
        } catch (const YAML::Exception&) {
        }
      }
      bakes.push_back(bake);
      pauses.push_back(pause);
      if (v <= last || v > 100) {
        r.error(n["steps"][i], R::index(R::join(f, "steps"), i),
                "expected increasing weights in 1..100, like [10, 50, 100] (or {weight: 50, bake: 5m, pause: true})");
        ok = false;
        break;
      }
      steps.push_back(v);
      last = v;
    }
    if (ok && (steps.empty() || steps.back() != 100)) {
      r.error(n["steps"], R::join(f, "steps"), "the last step must be 100");
      ok = false;
    }
    if (ok) {
      s->steps = steps;
      s->step_bake = bakes;
      s->step_pause = pauses;
    }
  }
  if (auto v = r.getDuration(n, f, "bake")) s->bake = *v;
  if (auto v = r.getBool(n, f, "auto_promote")) s->auto_promote = *v;
  if (auto v = r.getDuration(n, f, "scale_down_delay")) s->scale_down_delay = *v;
  if (auto v = r.getDuration(n, f, "progress_deadline")) s->progress_deadline = *v;
  if (auto v = r.getInt(n, f, "preview_requests", 0, 1000)) s->preview_requests = static_cast<int>(*v);
  if (const YAML::Node m = n["mirror"]; m.IsDefined() && !m.IsNull()) {
    const std::string mf = R::join(f, "mirror");
    if (r.expectMap(m, mf, {"percent"})) {
      if (auto v = r.getInt(m, mf, "percent", 1, 100, true)) s->mirror = static_cast<int>(*v);
    }
  }
}

std::optional<NoDataPolicy> noDataOf(R& r, const YAML::Node& n, const std::string& f) {
  auto v = r.getString(n, f, "no_data");
  if (!v) return std::nullopt;
  if (*v == "fail") return NoDataPolicy::kFail;
  if (*v == "pass") return NoDataPolicy::kPass;
  if (*v == "inconclusive") return NoDataPolicy::kInconclusive;
  r.error(n["no_data"], R::join(f, "no_data"), "expected fail, pass or inconclusive; got \"" + *v + "\"");
  return std::nullopt;
}

void readPrometheus(R& r, const YAML::Node& n, const std::string& f, ServiceSpec* s) {
  if (!n.IsDefined()) return;
  if (!r.expectMap(n, f, {"url", "queries"})) return;
  if (auto v = r.getString(n, f, "url", true)) {
    s->prometheus_url = *v;
    while (!s->prometheus_url.empty() && s->prometheus_url.back() == '/') s->prometheus_url.pop_back();
    if (s->prometheus_url.rfind("http://", 0) != 0 && s->prometheus_url.rfind("https://", 0) != 0) {
      r.error(n["url"], R::join(f, "url"), "expected an http:// or https:// URL");
    }
  }
  const YAML::Node qs = n["queries"];
  if (!qs.IsDefined() || !r.expectSequence(qs, R::join(f, "queries"))) return;
  static const std::regex cond(R"(\s*(<=|>=|==|!=|<|>)\s*(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)\s*)");
  for (size_t i = 0; i < qs.size(); ++i) {
    const std::string qf = R::index(R::join(f, "queries"), i);
    if (!r.expectMap(qs[i], qf, {"name", "query", "success", "no_data"})) continue;
    PrometheusCheck c;
    if (auto v = r.getString(qs[i], qf, "name", true)) c.name = *v;
    if (auto v = r.getString(qs[i], qf, "query", true)) c.query = *v;
    if (auto v = r.getString(qs[i], qf, "success", true)) {
      std::smatch m;
      if (!std::regex_match(*v, m, cond)) {
        r.error(qs[i]["success"], R::join(qf, "success"), "expected a comparison with a number, like \"< 0.01\" or \">= 0.99\"");
        continue;
      }
      c.op = m[1];
      c.threshold = std::stod(m[2]);
    }
    if (auto p = noDataOf(r, qs[i], qf)) c.no_data = *p;
    s->prometheus_checks.push_back(std::move(c));
  }
}

void readAnalysis(R& r, const YAML::Node& n, const std::string& f, AnalysisSpec* a, ServiceSpec* s) {
  if (!n.IsDefined()) return;
  if (!r.expectMap(n, f, {"interval", "count", "failure_limit", "inconclusive_limit", "max_error_ratio", "min_requests",
                          "no_data", "prometheus", "max_latency", "latency_quantile", "probes"})) {
    return;
  }
  readPrometheus(r, n["prometheus"], R::join(f, "prometheus"), s);
  if (auto v = r.getDuration(n, f, "interval")) {
    if (*v < std::chrono::milliseconds(100)) r.error(n["interval"], R::join(f, "interval"), "at least 100ms");
    a->interval = *v;
  }
  if (auto v = r.getInt(n, f, "count", 1, 1000)) a->count = static_cast<int>(*v);
  if (auto v = r.getInt(n, f, "failure_limit", 0, 1000)) a->failure_limit = static_cast<int>(*v);
  if (auto v = r.getInt(n, f, "inconclusive_limit", 1, 1000)) a->inconclusive_limit = static_cast<int>(*v);
  if (auto v = r.getDouble(n, f, "max_error_ratio", 0, 1)) a->max_error_ratio = *v;
  if (auto v = r.getInt(n, f, "min_requests", 0, 100000000)) a->min_requests = static_cast<int>(*v);
  if (auto p = noDataOf(r, n, f)) a->no_data = *p;
  if (auto v = r.getDuration(n, f, "max_latency")) a->max_latency = *v;
  if (auto v = r.getDouble(n, f, "latency_quantile", 0.5, 0.9999)) a->latency_quantile = *v;
  s->analysis_probes = r.getStringList(n, f, "probes");
}

std::optional<ServiceSpec> readService(R& r, const YAML::Node& n, const std::string& f) {
  if (!r.expectMap(n, f, {"name", "router", "stable", "release", "deploy", "blue", "green", "ready", "preview", "strategy", "analysis", "gates"})) return std::nullopt;
  const size_t before = r.errors().size();
  ServiceSpec s;
  if (auto v = r.getString(n, f, "name", true)) s.rollout.service = *v;
  if (auto v = r.getString(n, f, "stable")) {
    if (auto c = parseColor(*v)) s.initial_stable = *c;
    else r.error(n["stable"], R::join(f, "stable"), "expected blue or green");
  }
  if (auto v = r.getString(n, f, "release")) s.initial_release = *v;
  const YAML::Node router = n["router"];
  const std::string rf = R::join(f, "router");
  if (!router.IsDefined()) {
    r.error(n, rf, "required: {builtin: {socket: PATH, service: NAME}} or {haproxy: {...}}");
  } else if (r.expectMap(router, rf, {"builtin", "haproxy", "timeout"})) {
    if (auto v = r.getDuration(router, rf, "timeout")) s.router_timeout = *v;
    const bool b = router["builtin"].IsDefined(), h = router["haproxy"].IsDefined();
    if (b == h) r.error(router, rf, "exactly one of builtin, haproxy");
    if (b && r.expectMap(router["builtin"], R::join(rf, "builtin"), {"socket", "service"})) {
      s.router = RouterKind::kBuiltin;
      if (auto v = r.getString(router["builtin"], R::join(rf, "builtin"), "socket", true)) s.builtin.socket = *v;
      s.builtin.service = r.getString(router["builtin"], R::join(rf, "builtin"), "service").value_or(s.rollout.service);
    }
    const std::string hf = R::join(rf, "haproxy");
    if (h && r.expectMap(router["haproxy"], hf, {"socket", "address", "backend", "blue", "green"})) {
      s.router = RouterKind::kHaproxy;
      const YAML::Node hn = router["haproxy"];
      if (auto v = r.getString(hn, hf, "socket")) s.haproxy.socket = *v;
      if (auto v = r.getString(hn, hf, "address")) s.haproxy.address = *v;
      if (s.haproxy.socket.empty() == s.haproxy.address.empty()) r.error(hn, hf, "exactly one of socket, address");
      if (auto v = r.getString(hn, hf, "backend", true)) s.haproxy.backend = *v;
      for (const char* c : {"blue", "green"}) {
        s.haproxy.servers[c] = r.getStringList(hn, hf, c);
        if (s.haproxy.servers[c].empty()) r.error(hn, R::join(hf, c), "the backend's server names of this colour");
      }
    }
  }
  for (int c = 0; c < 2; ++c) {
    const char* key = c == 0 ? "blue" : "green";
    s.endpoints[c] = r.getStringList(n, f, key);
    for (size_t i = 0; i < s.endpoints[c].size(); ++i) {
      if (!validHostPort(s.endpoints[c][i])) r.error(n[key][i], R::index(R::join(f, key), i), "expected host:port");
    }
  }
  const YAML::Node deploy = n["deploy"];
  const std::string df = R::join(f, "deploy");
  if (deploy.IsDefined() && deploy.IsScalar()) {
    if (deploy.Scalar() != "external") r.error(deploy, df, "expected external or {start: CMD, stop: CMD, timeout: 5m}");
  } else if (deploy.IsDefined() && r.expectMap(deploy, df, {"start", "stop", "timeout"})) {
    if (auto v = r.getString(deploy, df, "start", true)) s.deploy_start = *v;
    if (auto v = r.getString(deploy, df, "stop")) s.deploy_stop = *v;
    if (auto v = r.getDuration(deploy, df, "timeout")) s.deploy_timeout = *v;
  }
  const YAML::Node ready = n["ready"];
  if (ready.IsDefined() && r.expectMap(ready, R::join(f, "ready"), {"path", "timeout"})) {
    if (auto v = r.getString(ready, R::join(f, "ready"), "path")) s.ready_path = *v;
    if (auto v = r.getDuration(ready, R::join(f, "ready"), "timeout")) s.ready_timeout = *v;
  }
  const YAML::Node preview = n["preview"];
  if (preview.IsDefined() && r.expectMap(preview, R::join(f, "preview"), {"url", "header"})) {
    if (auto v = r.getString(preview, R::join(f, "preview"), "url", true)) s.preview_url = *v;
    if (auto v = r.getString(preview, R::join(f, "preview"), "header")) s.preview_header = *v;
  }
  readStrategy(r, n["strategy"], R::join(f, "strategy"), &s.rollout.strategy);
  readAnalysis(r, n["analysis"], R::join(f, "analysis"), &s.rollout.analysis, &s);
  if (s.preview_url.empty()) s.rollout.strategy.preview_requests = 0;
  if (s.router == RouterKind::kHaproxy && s.rollout.strategy.mirror > 0) {
    r.error(n["strategy"]["mirror"], R::join(f, "strategy.mirror"),
            "needs router builtin (greenlight proxy copies the requests; HAProxy's runtime API cannot)");
  }
  if (s.router == RouterKind::kHaproxy && s.rollout.analysis.max_latency > Duration(0)) {
    r.error(n["analysis"]["max_latency"], R::join(f, "analysis.max_latency"),
            "needs router builtin (HAProxy's runtime API has no latency histogram); "
            "ask Prometheus instead with analysis.prometheus");
  }
  const YAML::Node gates = n["gates"];
  const std::string gf = R::join(f, "gates");
  if (gates.IsDefined() && r.expectMap(gates, gf, {"pre-rollout", "confirm-promotion", "post-rollout", "rollback"})) {
    for (auto it = gates.begin(); it != gates.end(); ++it) {
      const std::string name = it->first.Scalar();
      const std::string nf = R::join(gf, name);
      if (!r.expectMap(it->second, nf, {"url", "timeout", "on_timeout"})) continue;
      GateSpec g;
      if (auto v = r.getString(it->second, nf, "url", true)) g.url = *v;
      if (!g.url.empty() && g.url.rfind("http://", 0) != 0 && g.url.rfind("https://", 0) != 0) {
        r.error(it->second["url"], R::join(nf, "url"), "expected an http:// or https:// URL");
      }
      if (auto v = r.getDuration(it->second, nf, "timeout")) g.timeout = *v;
      if (auto v = r.getString(it->second, nf, "on_timeout")) {
        if (*v == "fail") g.on_timeout = GateTimeout::kFail;
        else if (*v == "pass") g.on_timeout = GateTimeout::kPass;
        else if (*v == "wait") g.on_timeout = GateTimeout::kWait;
        else r.error(it->second["on_timeout"], R::join(nf, "on_timeout"), "expected fail, pass or wait; got \"" + *v + "\"");
      }
      s.gates[name] = g;
    }
  }
  s.rollout.strategy.pre_rollout_gate = s.gates.count("pre-rollout") > 0;
  s.rollout.strategy.confirm_promotion_gate = s.gates.count("confirm-promotion") > 0;
  if (r.errors().size() != before) return std::nullopt;
  return s;
}

}  // namespace

ControllerConfig parseControllerConfig(ConfigReader& r, const YAML::Node& node, const std::string& field) {
  ControllerConfig c;
  if (!node.IsDefined() || node.IsNull()) return c;
  if (!r.expectMap(node, field, {"state_dir", "audit_log", "tick", "services"})) return c;
  c.enabled = true;
  if (auto v = r.getString(node, field, "state_dir")) c.state_dir = *v;
  if (auto v = r.getString(node, field, "audit_log")) c.audit_log = *v;
  if (c.audit_log.empty() && !c.state_dir.empty()) c.audit_log = c.state_dir + "/audit.log";
  if (auto v = r.getDuration(node, field, "tick")) c.tick = *v;
  std::set<std::string> names;
  const YAML::Node services = node["services"];
  if (services.IsDefined() && r.expectSequence(services, R::join(field, "services"))) {
    for (size_t i = 0; i < services.size(); ++i) {
      const std::string f = R::index(R::join(field, "services"), i);
      auto s = readService(r, services[i], f);
      if (!s) continue;
      if (!names.insert(s->rollout.service).second) {
        r.error(services[i]["name"], R::join(f, "name"), "another service is named \"" + s->rollout.service + "\"");
        continue;
      }
      c.services.push_back(std::move(*s));
    }
  }
  return c;
}

}  // namespace greenlight::controller
