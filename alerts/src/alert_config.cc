#include "greenlight/alerts/alert_config.h"

#include <regex>
#include <set>

namespace greenlight::alerts {
namespace {

using R = ConfigReader;
using namespace std::chrono_literals;

bool validLabelName(const std::string& s) {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_]*");
  return std::regex_match(s, re);
}

std::vector<Matcher> readMatchers(R& r, const YAML::Node& node, const std::string& field, const char* key) {
  std::vector<Matcher> out;
  const YAML::Node list = node[key];
  const auto texts = r.getStringList(node, field, key);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto m = parseMatcher(texts[i]);
    if (!m.ok()) {
      r.error(list[i], R::index(R::join(field, key), i), m.status().message());
      continue;
    }
    out.push_back(std::move(m.value()));
  }
  return out;
}

Labels readLabelMap(R& r, const YAML::Node& node, const std::string& field, const char* key, bool templates) {
  Labels out;
  for (auto& [k, v] : r.getStringMap(node, field, key)) {
    const std::string f = R::join(R::join(field, key), k);
    if (!validLabelName(k)) {
      r.error(node[key][k], f, "names are letters, digits and _, not starting with a digit");
      continue;
    }
    if (templates) {
      if (std::string why = checkTemplate(v); !why.empty()) {
        r.error(node[key][k], f, why);
        continue;
      }
    }
    out[k] = v;
  }
  return out;
}

std::optional<RuleKind> kindOf(const std::string& s) {
  static const std::map<std::string, RuleKind> kinds = {{"probe_health", RuleKind::kProbeHealth},
                                                        {"failure_ratio", RuleKind::kFailureRatio},
                                                        {"latency", RuleKind::kLatency},
                                                        {"burn_rate", RuleKind::kBurnRate},
                                                        {"event", RuleKind::kEvent}};
  auto it = kinds.find(s);
  if (it == kinds.end()) return std::nullopt;
  return it->second;
}

std::optional<RuleSpec> readRule(R& r, const YAML::Node& n, const std::string& f) {
  if (!r.expectMap(n, f, {"alert", "kind", "matchers", "by", "window", "threshold", "quantile", "objective",
                          "windows", "event", "for", "keep_firing_for", "min_samples", "no_data", "labels",
                          "annotations", "quorum"})) {
    return std::nullopt;
  }
  RuleSpec rule;
  const size_t errors_before = r.errors().size();
  auto name = r.getString(n, f, "alert", true);
  if (name && !validLabelName(*name)) r.error(n["alert"], R::join(f, "alert"), "alert names are letters, digits and _");
  if (name) rule.name = *name;
  auto kind_text = r.getString(n, f, "kind", true);
  if (kind_text) {
    auto k = kindOf(*kind_text);
    if (!k) {
      r.error(n["kind"], R::join(f, "kind"),
              "expected one of probe_health, failure_ratio, latency, burn_rate, event; got \"" + *kind_text + "\"");
    } else {
      rule.kind = *k;
    }
  }
  rule.matchers = readMatchers(r, n, f, "matchers");
  rule.by = r.getStringList(n, f, "by");
  if (auto v = r.getDuration(n, f, "for")) rule.for_duration = *v;
  if (rule.kind == RuleKind::kEvent) rule.keep_firing_for = 5min;  // an event is news for a while
  if (auto v = r.getDuration(n, f, "keep_firing_for")) rule.keep_firing_for = *v;
  if (auto v = r.getInt(n, f, "min_samples", 1, 1000000)) rule.min_samples = static_cast<int>(*v);
  if (auto v = r.getString(n, f, "no_data")) {
    if (*v == "keep") rule.no_data = NoDataPolicy::kKeep;
    else if (*v == "resolve") rule.no_data = NoDataPolicy::kResolve;
    else if (*v == "alert") rule.no_data = NoDataPolicy::kAlert;
    else r.error(n["no_data"], R::join(f, "no_data"), "expected keep, resolve or alert; got \"" + *v + "\"");
  }
  rule.labels = readLabelMap(r, n, f, "labels", false);
  rule.annotations = readLabelMap(r, n, f, "annotations", true);
  const bool windowed = rule.kind == RuleKind::kFailureRatio || rule.kind == RuleKind::kLatency;
  auto only_for = [&](const char* key, bool allowed, const char* kinds) {
    if (!allowed && n[key].IsDefined()) r.error(n[key], R::join(f, key), std::string("only for kind ") + kinds);
  };
  only_for("window", windowed, "failure_ratio or latency");
  only_for("threshold", windowed, "failure_ratio or latency");
  only_for("quantile", rule.kind == RuleKind::kLatency, "latency");
  only_for("objective", rule.kind == RuleKind::kBurnRate, "burn_rate");
  only_for("windows", rule.kind == RuleKind::kBurnRate, "burn_rate");
  only_for("event", rule.kind == RuleKind::kEvent, "event");
  only_for("quorum", rule.kind == RuleKind::kProbeHealth, "probe_health");
  if (auto v = r.getInt(n, f, "quorum", 1, 1000)) {
    rule.quorum = static_cast<int>(*v);
    if (rule.quorum > 1 && rule.by.empty()) {
      r.error(n["quorum"], R::join(f, "quorum"), "a quorum counts probes of a group: set `by` (e.g. by: [oem])");
    }
  }
  if (windowed) {
    if (auto v = r.getDuration(n, f, "window")) rule.window = *v;
    if (rule.window <= Duration(0)) r.error(n["window"], R::join(f, "window"), "must be positive");
  }
  if (rule.kind == RuleKind::kFailureRatio) {
    if (auto v = r.getDouble(n, f, "threshold", 0, 1, true)) rule.threshold = *v;
  } else if (rule.kind == RuleKind::kLatency) {
    if (auto v = r.getDuration(n, f, "threshold", true)) rule.threshold = toSeconds(*v);
    if (auto v = r.getDouble(n, f, "quantile", 0, 1)) rule.quantile = *v;
  } else if (rule.kind == RuleKind::kBurnRate) {
    if (auto v = r.getDouble(n, f, "objective", 0, 100, true)) {
      if (*v <= 0 || *v >= 100) r.error(n["objective"], R::join(f, "objective"), "a percentage between 0 and 100, e.g. 99.9");
      rule.objective = *v / 100.0;
    }
    const YAML::Node ws = n["windows"];
    if (!ws.IsDefined()) {
      rule.burn_windows = defaultBurnWindows();
    } else if (r.expectSequence(ws, R::join(f, "windows"))) {
      for (size_t i = 0; i < ws.size(); ++i) {
        const std::string wf = R::index(R::join(f, "windows"), i);
        if (!r.expectMap(ws[i], wf, {"long", "short", "factor", "severity"})) continue;
        BurnWindow w;
        auto lw = r.getDuration(ws[i], wf, "long", true);
        auto sw = r.getDuration(ws[i], wf, "short", true);
        auto fa = r.getDouble(ws[i], wf, "factor", 0.01, 1000, true);
        auto sv = r.getString(ws[i], wf, "severity", true);
        if (!lw || !sw || !fa || !sv) continue;
        if (*sw >= *lw) r.error(ws[i]["short"], R::join(wf, "short"), "the short window must be shorter than the long one");
        rule.burn_windows.push_back({*lw, *sw, *fa, *sv});
      }
    }
  } else if (rule.kind == RuleKind::kEvent) {
    if (auto v = r.getString(n, f, "event", true)) rule.event = *v;
  }
  if (r.errors().size() != errors_before) return std::nullopt;
  return rule;
}

void readRoute(R& r, const YAML::Node& n, const std::string& f, RouteSpec* route, bool root) {
  if (!r.expectMap(n, f, {"receiver", "matchers", "continue", "group_by", "group_wait", "group_interval",
                          "repeat_interval", "resolve_immediately", "routes"})) {
    return;
  }
  if (auto v = r.getString(n, f, "receiver", root)) route->receiver = *v;
  if (root && n["matchers"].IsDefined()) r.error(n["matchers"], R::join(f, "matchers"), "the root route matches every alert");
  route->matchers = readMatchers(r, n, f, "matchers");
  if (auto v = r.getBool(n, f, "continue")) route->continue_matching = *v;
  if (n["group_by"].IsDefined()) route->group_by = r.getStringList(n, f, "group_by");
  if (auto v = r.getDuration(n, f, "group_wait")) route->group_wait = *v;
  if (auto v = r.getDuration(n, f, "group_interval")) {
    if (*v <= Duration(0)) r.error(n["group_interval"], R::join(f, "group_interval"), "must be positive");
    route->group_interval = *v;
  }
  if (auto v = r.getDuration(n, f, "repeat_interval")) route->repeat_interval = *v;
  if (auto v = r.getBool(n, f, "resolve_immediately")) route->resolve_immediately = *v;
  const YAML::Node children = n["routes"];
  if (children.IsDefined() && r.expectSequence(children, R::join(f, "routes"))) {
    for (size_t i = 0; i < children.size(); ++i) {
      RouteSpec child;
      readRoute(r, children[i], R::index(R::join(f, "routes"), i), &child, false);
      route->routes.push_back(std::move(child));
    }
  }
}

void checkReceivers(R& r, const YAML::Node& n, const std::string& f, const RouteSpec& route,
                    const std::set<std::string>& names) {
  if (!route.receiver.empty() && !names.count(route.receiver)) {
    r.error(n["receiver"], R::join(f, "receiver"), "no receiver named \"" + route.receiver + "\" in alerting.receivers");
  }
  for (size_t i = 0; i < route.routes.size(); ++i) {
    checkReceivers(r, n["routes"][i], R::index(R::join(f, "routes"), i), route.routes[i], names);
  }
}

std::optional<ReceiverSpec> readReceiver(R& r, const YAML::Node& n, const std::string& f) {
  if (!r.expectMap(n, f, {"name", "webhook", "slack", "pagerduty", "alertmanager"})) return std::nullopt;
  ReceiverSpec spec;
  auto name = r.getString(n, f, "name", true);
  if (!name) return std::nullopt;
  spec.name = *name;
  int kinds = 0;
  for (auto [key, kind] : {std::pair{"webhook", ReceiverKind::kWebhook}, std::pair{"slack", ReceiverKind::kSlack},
                           std::pair{"pagerduty", ReceiverKind::kPagerDuty},
                           std::pair{"alertmanager", ReceiverKind::kAlertmanager}}) {
    const YAML::Node k = n[key];
    if (!k.IsDefined()) continue;
    ++kinds;
    spec.kind = kind;
    const std::string kf = R::join(f, key);
    if (!r.expectMap(k, kf, {"url", "routing_key", "headers", "timeout", "send_resolved", "max_alerts", "tls",
                                   "resend_interval"})) continue;
    const bool pd = kind == ReceiverKind::kPagerDuty;
    if (auto v = r.getString(k, kf, "url", !pd)) spec.url = *v;
    if (pd && spec.url.empty()) spec.url = "https://events.pagerduty.com/v2/enqueue";
    if (!spec.url.empty() && spec.url.rfind("http://", 0) != 0 && spec.url.rfind("https://", 0) != 0) {
      r.error(k["url"], R::join(kf, "url"), "expected an http:// or https:// URL");
    }
    if (pd) {
      if (auto v = r.getString(k, kf, "routing_key", true)) spec.routing_key = *v;
    } else if (k["routing_key"].IsDefined()) {
      r.error(k["routing_key"], R::join(kf, "routing_key"), "only for pagerduty receivers");
    }
    if (kind == ReceiverKind::kWebhook) {
      spec.headers = r.getStringMap(k, kf, "headers");
    } else if (k["headers"].IsDefined()) {
      r.error(k["headers"], R::join(kf, "headers"), "only for webhook receivers");
    }
    if (auto v = r.getDuration(k, kf, "timeout")) spec.timeout = *v;
    if (kind == ReceiverKind::kAlertmanager) {
      if (auto v = r.getDuration(k, kf, "resend_interval")) spec.resend_interval = *v;
    } else if (k["resend_interval"].IsDefined()) {
      r.error(k["resend_interval"], R::join(kf, "resend_interval"), "only for alertmanager receivers");
    }
    if (auto v = r.getBool(k, kf, "send_resolved")) spec.send_resolved = *v;
    if (auto v = r.getInt(k, kf, "max_alerts", 0, 100000)) spec.max_alerts = static_cast<int>(*v);
    const YAML::Node tls = k["tls"];
    if (tls.IsDefined() && r.expectMap(tls, R::join(kf, "tls"), {"ca_file", "insecure_skip_verify"})) {
      if (auto v = r.getString(tls, R::join(kf, "tls"), "ca_file")) spec.ca_file = *v;
      if (auto v = r.getBool(tls, R::join(kf, "tls"), "insecure_skip_verify")) spec.verify_tls = !*v;
    }
  }
  if (kinds != 1) {
    r.error(n, f, "a receiver has exactly one of webhook, slack, pagerduty, alertmanager");
    return std::nullopt;
  }
  return spec;
}

}  // namespace

AlertingConfig parseAlertingConfig(ConfigReader& r, const YAML::Node& node, const std::string& field) {
  AlertingConfig c;
  if (!node.IsDefined() || node.IsNull()) return c;
  if (!r.expectMap(node, field, {"external_url", "state_dir", "evaluation_interval", "watchdog", "report_short_alerts",
                                 "retry", "rules", "route", "receivers", "inhibit_rules"})) {
    return c;
  }
  c.enabled = true;
  if (auto v = r.getString(node, field, "external_url")) {
    c.external_url = *v;
    while (!c.external_url.empty() && c.external_url.back() == '/') c.external_url.pop_back();
  }
  if (auto v = r.getString(node, field, "state_dir")) c.state_dir = *v;
  if (auto v = r.getDuration(node, field, "evaluation_interval")) {
    if (*v < std::chrono::milliseconds(100)) r.error(node["evaluation_interval"], R::join(field, "evaluation_interval"), "at least 100ms");
    c.evaluation_interval = *v;
  }
  if (auto v = r.getBool(node, field, "watchdog")) c.watchdog = *v;
  if (auto v = r.getBool(node, field, "report_short_alerts")) c.dispatch.report_short_alerts = *v;
  const YAML::Node retry = node["retry"];
  if (retry.IsDefined() && r.expectMap(retry, R::join(field, "retry"), {"initial", "max", "max_age"})) {
    const std::string f = R::join(field, "retry");
    if (auto v = r.getDuration(retry, f, "initial")) c.retry.initial = *v;
    if (auto v = r.getDuration(retry, f, "max")) c.retry.max = *v;
    if (auto v = r.getDuration(retry, f, "max_age")) c.retry.max_age = *v;
  }
  std::set<std::string> rule_names;
  const YAML::Node rules = node["rules"];
  if (rules.IsDefined() && r.expectSequence(rules, R::join(field, "rules"))) {
    for (size_t i = 0; i < rules.size(); ++i) {
      const std::string f = R::index(R::join(field, "rules"), i);
      auto rule = readRule(r, rules[i], f);
      if (!rule) continue;
      if (!rule_names.insert(rule->name).second) {
        r.error(rules[i]["alert"], R::join(f, "alert"), "another rule is named \"" + rule->name + "\" already");
        continue;
      }
      c.rules.push_back(std::move(*rule));
    }
  }
  std::set<std::string> receiver_names;
  const YAML::Node receivers = node["receivers"];
  if (receivers.IsDefined() && r.expectSequence(receivers, R::join(field, "receivers"))) {
    for (size_t i = 0; i < receivers.size(); ++i) {
      const std::string f = R::index(R::join(field, "receivers"), i);
      auto rec = readReceiver(r, receivers[i], f);
      if (!rec) continue;
      if (!receiver_names.insert(rec->name).second) {
        r.error(receivers[i]["name"], R::join(f, "name"), "a receiver named \"" + rec->name + "\" exists already");
        continue;
      }
      if (rec->kind == ReceiverKind::kAlertmanager) c.dispatch.resend[rec->name] = rec->resend_interval;
      c.receivers.push_back(std::move(*rec));
    }
  }
  const YAML::Node route = node["route"];
  if (!route.IsDefined()) {
    if (!c.rules.empty() || c.watchdog) r.error(node, field, "alerting needs a route: {receiver: NAME, ...}");
  } else {
    readRoute(r, route, R::join(field, "route"), &c.dispatch.root, true);
    checkReceivers(r, route, R::join(field, "route"), c.dispatch.root, receiver_names);
  }
  const YAML::Node inhibit = node["inhibit_rules"];
  if (inhibit.IsDefined() && r.expectSequence(inhibit, R::join(field, "inhibit_rules"))) {
    for (size_t i = 0; i < inhibit.size(); ++i) {
      const std::string f = R::index(R::join(field, "inhibit_rules"), i);
      if (!r.expectMap(inhibit[i], f, {"source_matchers", "target_matchers", "equal"})) continue;
      InhibitRule ir;
      ir.source_matchers = readMatchers(r, inhibit[i], f, "source_matchers");
      ir.target_matchers = readMatchers(r, inhibit[i], f, "target_matchers");
      ir.equal = r.getStringList(inhibit[i], f, "equal");
      if (ir.source_matchers.empty() || ir.target_matchers.empty()) {
        r.error(inhibit[i], f, "an inhibit rule needs source_matchers and target_matchers");
        continue;
      }
      c.dispatch.inhibit_rules.push_back(std::move(ir));
    }
  }
  return c;
}

}  // namespace greenlight::alerts
