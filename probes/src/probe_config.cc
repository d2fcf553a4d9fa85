// Reads probes from YAML. Every problem is reported with file:line:column and field; the probe
// with a problem is left out, the rest are still checked so one run shows every error.
#include <algorithm>
#include <cctype>
#include <regex>
#include <set>
#include <sstream>

#include "greenlight/probes/probe_spec.h"

namespace greenlight::probes {
namespace {

using R = ConfigReader;

const std::vector<std::string_view> kStepKeys = {
    "name", "url", "method", "headers", "body", "follow_redirects", "max_redirects",
    "http_version", "max_body_bytes", "conditions", "capture", "oauth2"};
const std::vector<std::string_view> kProbeKeys = {
    "name", "labels", "interval", "timeout", "health", "retries", "tls", "steps",
    "url", "method", "headers", "body", "follow_redirects", "max_redirects", "http_version",
    "max_body_bytes", "conditions"};
const std::vector<std::string_view> kDefaultKeys = {
    "interval", "timeout", "labels", "health", "retries", "tls"};

bool validName(const std::string& s) {
  static const std::regex re("[A-Za-z0-9_][A-Za-z0-9_.\\-]*");
  return s.size() <= 128 && std::regex_match(s, re);
}

bool validLabelName(const std::string& s) {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_]*");
  return std::regex_match(s, re) && s.rfind("__", 0) != 0;
}

const std::set<std::string> kReservedLabels = {"probe", "phase", "reason", "step", "le",
                                               "instance", "job"};

struct Defaults {
  Duration interval{30s};
  Duration timeout{10s};
  std::map<std::string, std::string> labels;
  HealthPolicy health;
  RetryPolicy retry;
  TlsSettings tls;
};

void readLabels(R& r, const YAML::Node& node, const std::string& field,
                std::map<std::string, std::string>* labels) {
  for (auto& [k, v] : r.getStringMap(node, field, "labels")) {
    if (!validLabelName(k) || kReservedLabels.count(k)) {
      r.error(node["labels"][k], R::join(R::join(field, "labels"), k),
              kReservedLabels.count(k)
                  ? "label name is reserved by Greenlight's metrics"
                  : "label names are letters, digits and _, not starting with a digit or __");
      continue;
    }
    (*labels)[k] = v;
  }
}

void readHealth(R& r, const YAML::Node& node, const std::string& field, HealthPolicy* h) {
  const YAML::Node n = node["health"];
  if (!n.IsDefined() || n.IsNull()) return;
  const std::string f = R::join(field, "health");
  if (!r.expectMap(n, f, {"failure_threshold", "success_threshold"})) return;
  if (auto v = r.getInt(n, f, "failure_threshold", 1, 1000)) h->failure_threshold = int(*v);
  if (auto v = r.getInt(n, f, "success_threshold", 1, 1000)) h->success_threshold = int(*v);
}

void readRetries(R& r, const YAML::Node& node, const std::string& field, RetryPolicy* p) {
  const YAML::Node n = node["retries"];
  if (!n.IsDefined() || n.IsNull()) return;
  const std::string f = R::join(field, "retries");
  if (!r.expectMap(n, f, {"attempts", "backoff", "max_backoff"})) return;
  if (auto v = r.getInt(n, f, "attempts", 1, 10)) p->attempts = int(*v);
  if (auto v = r.getDuration(n, f, "backoff")) p->backoff = *v;
  if (auto v = r.getDuration(n, f, "max_backoff")) p->max_backoff = *v;
}

void readTls(R& r, const YAML::Node& node, const std::string& field, TlsSettings* t) {
  const YAML::Node n = node["tls"];
  if (!n.IsDefined() || n.IsNull()) return;
  const std::string f = R::join(field, "tls");
  if (!r.expectMap(n, f, {"insecure_skip_verify", "ca_file", "cert_file", "key_file",
                          "server_name"})) {
    return;
  }
  if (auto v = r.getBool(n, f, "insecure_skip_verify")) t->insecure_skip_verify = *v;
  if (auto v = r.getString(n, f, "ca_file")) t->ca_file = *v;
  if (auto v = r.getString(n, f, "cert_file")) t->cert_file = *v;
  if (auto v = r.getString(n, f, "key_file")) t->key_file = *v;
  if (auto v = r.getString(n, f, "server_name")) t->server_name = *v;
  if (t->cert_file.empty() != t->key_file.empty()) {
    r.error(n, f, "cert_file and key_file go together (client certificate for mTLS)");
  }
}

void readOAuth2(R& r, const YAML::Node& n, const std::string& f, OAuth2Settings* o) {
  if (!r.expectMap(n, f, {"token_url", "client_id", "client_secret", "scopes", "auth_method",
                          "refresh_before", "capture_as"})) {
    return;
  }
  o->token_url = r.getString(n, f, "token_url", true).value_or("");
  if (!o->token_url.empty() && o->token_url.rfind("https://", 0) != 0 &&
      o->token_url.rfind("http://", 0) != 0) {
    r.error(n["token_url"], R::join(f, "token_url"), "expected an http:// or https:// URL");
  }
  o->client_id = r.getString(n, f, "client_id", true).value_or("");
  o->client_secret = r.getString(n, f, "client_secret", true).value_or("");
  o->scopes = r.getStringList(n, f, "scopes");
  if (auto m = r.getString(n, f, "auth_method")) {
    if (*m == "basic") o->basic_auth = true;
    else if (*m == "body") o->basic_auth = false;
    else r.error(n["auth_method"], R::join(f, "auth_method"), "expected basic or body, got \"" + *m + "\"");
  }
  if (auto v = r.getDuration(n, f, "refresh_before")) o->refresh_before = *v;
  if (auto v = r.getString(n, f, "capture_as")) o->capture_as = *v;
}

// Reads the request and checks of a step (also used for a single-step probe's own keys).
void readStepBody(R& r, const YAML::Node& n, const std::string& f, std::set<std::string>& known,
                  StepSpec* s) {
  if (const YAML::Node o = n["oauth2"]; o.IsDefined() && !o.IsNull()) {
    s->kind = StepKind::kOAuth2;
    if (n["url"].IsDefined()) r.error(n["url"], R::join(f, "url"), "an oauth2 step has no url (it uses oauth2.token_url)");
    readOAuth2(r, o, R::join(f, "oauth2"), &s->oauth2);
    known.insert(s->oauth2.capture_as);
  } else if (auto url = r.getString(n, f, "url", true, &known)) {
    std::string lower = *url;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower.rfind("http://", 0) == 0 || lower.rfind("https://", 0) == 0) {
      s->kind = StepKind::kHttp;
      s->url = *url;
    } else if (lower.rfind("tcp://", 0) == 0 || lower.rfind("tls://", 0) == 0) {
      s->kind = lower[1] == 'c' ? StepKind::kTcp : StepKind::kTls;
      s->url = url->substr(6);
      if (s->url.find(':') == std::string::npos || s->url.find('/') != std::string::npos) {
        r.error(n["url"], R::join(f, "url"), "expected tcp://host:port or tls://host:port, got \"" + *url + "\"");
      }
    } else {
      r.error(n["url"], R::join(f, "url"),
              "expected a URL starting with http://, https://, tcp:// or tls://, got \"" + *url + "\"");
    }
  }
  if (auto m = r.getString(n, f, "method")) {
    static const std::set<std::string> kMethods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    if (!kMethods.count(*m)) r.error(n["method"], R::join(f, "method"), "expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, got \"" + *m + "\"");
    else s->method = *m;
  }
  for (auto& [k, v] : r.getStringMap(n, f, "headers", &known)) s->headers.emplace_back(k, v);
  if (auto b = r.getString(n, f, "body", false, &known)) s->body = *b;
  if (auto v = r.getBool(n, f, "follow_redirects")) s->follow_redirects = *v;
  if (auto v = r.getInt(n, f, "max_redirects", 0, 50)) s->max_redirects = int(*v);
  if (auto v = r.getInt(n, f, "max_body_bytes", 0, 64 << 20)) s->max_body_bytes = size_t(*v);
  if (auto v = r.getString(n, f, "http_version")) {
    if (*v == "1.1") s->http_version = HttpVersion::kHttp1_1;
    else if (*v == "2") s->http_version = HttpVersion::kHttp2;
    else r.error(n["http_version"], R::join(f, "http_version"), "expected \"1.1\" or \"2\", got \"" + *v + "\"");
  }
  const std::string cf = R::join(f, "conditions");
  const YAML::Node conds = n["conditions"];
  if (conds.IsDefined() && !conds.IsNull() && r.expectSequence(conds, cf)) {
    for (size_t i = 0; i < conds.size(); ++i) {
      if (!conds[i].IsScalar()) {
        r.error(conds[i], R::index(cf, i), "expected a condition such as \"[STATUS] == 200\"");
        continue;
      }
      auto c = parseCondition(conds[i].Scalar());
      if (!c.ok()) r.error(conds[i], R::index(cf, i), c.status().message());
      else s->conditions.push_back(std::move(c.value()));
    }
  }
  const YAML::Node caps = n["capture"];
  if (caps.IsDefined() && !caps.IsNull()) {
    const std::string capf = R::join(f, "capture");
    if (!caps.IsMap()) {
      r.error(caps, capf, "expected a mapping of names to placeholders, e.g. token: [BODY].access_token");
    } else {
      for (const auto& kv : caps) {
        Capture c;
        c.name = kv.first.as<std::string>("");
        c.source = kv.second.as<std::string>("");
        Condition probe_cond;
        auto parsed = parseCondition(c.source + " == x");
        if (!validLabelName(c.name)) {
          r.error(kv.first, R::join(capf, c.name), "capture names are letters, digits and _");
        } else if (!parsed.ok() || parsed->left.placeholder == Placeholder::kNone) {
          r.error(kv.second, R::join(capf, c.name), "expected a placeholder such as [BODY].access_token or [HEADER].location, got \"" + c.source + "\"");
        } else {
          c.operand = parsed->left;
          known.insert(c.name);
          s->captures.push_back(std::move(c));
        }
      }
    }
  }
}

Defaults readDefaults(R& r, const YAML::Node& root) {
  Defaults d;
  const YAML::Node n = root["probe_defaults"];
  if (!n.IsDefined() || n.IsNull()) return d;
  const std::string f = "probe_defaults";
  if (!r.expectMap(n, f, kDefaultKeys)) return d;
  if (auto v = r.getDuration(n, f, "interval")) d.interval = *v;
  if (auto v = r.getDuration(n, f, "timeout")) d.timeout = *v;
  readLabels(r, n, f, &d.labels);
  readHealth(r, n, f, &d.health);
  readRetries(r, n, f, &d.retry);
  readTls(r, n, f, &d.tls);
  return d;
}

}  // namespace

std::vector<ProbeSpec> parseProbes(ConfigReader& r, const YAML::Node& root) {
  std::vector<ProbeSpec> out;
  Defaults d = readDefaults(r, root);
  const YAML::Node list = root["probes"];
  if (!list.IsDefined() || list.IsNull()) return out;
  if (!r.expectSequence(list, "probes")) return out;
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node n = list[i];
    const std::string f = R::index("probes", i);
    const size_t errors_before = r.errors().size();
    if (!r.expectMap(n, f, kProbeKeys)) continue;
    ProbeSpec p;
    p.name = r.getString(n, f, "name", true).value_or("");
    p.source = r.file() + ":" + std::to_string(n.Mark().line + 1);
    if (!p.name.empty() && !validName(p.name)) {
      r.error(n["name"], R::join(f, "name"), "names are letters, digits, '_', '-' and '.' (at most 128)");
    } else if (!p.name.empty() && !names.insert(p.name).second) {
      r.error(n["name"], R::join(f, "name"), "another probe already has the name \"" + p.name + "\"");
    }
    p.interval = r.getDuration(n, f, "interval").value_or(d.interval);
    p.timeout = r.getDuration(n, f, "timeout").value_or(d.timeout);
    if (p.interval < 100ms) r.error(n["interval"], R::join(f, "interval"), "must be at least 100ms");
    if (p.timeout <= 0s || p.timeout > p.interval) {
      r.error(n["timeout"].IsDefined() ? n["timeout"] : n, R::join(f, "timeout"),
              "must be more than 0 and at most the interval (" + std::to_string(toMillis(p.interval)) + "ms)");
    }
    std::map<std::string, std::string> labels = d.labels;
    readLabels(r, n, f, &labels);
    p.labels.assign(labels.begin(), labels.end());
    p.health = d.health;
    readHealth(r, n, f, &p.health);
    p.retry = d.retry;
    readRetries(r, n, f, &p.retry);
    p.tls = d.tls;
    readTls(r, n, f, &p.tls);

    std::set<std::string> known;  // values captured by earlier steps: ${name} stays for run time
    const YAML::Node steps = n["steps"];
    if (steps.IsDefined() && !steps.IsNull()) {
      if (n["url"].IsDefined()) r.error(n["url"], R::join(f, "url"), "a probe has either url or steps, not both");
      const std::string sf = R::join(f, "steps");
      if (r.expectSequence(steps, sf)) {
        if (steps.size() == 0) r.error(steps, sf, "needs at least one step");
        std::set<std::string> step_names;
        for (size_t j = 0; j < steps.size(); ++j) {
          const std::string stf = R::index(sf, j);
          if (!r.expectMap(steps[j], stf, kStepKeys)) continue;
          StepSpec s;
          s.name = r.getString(steps[j], stf, "name").value_or("step" + std::to_string(j + 1));
          if (!validName(s.name) || !step_names.insert(s.name).second) {
            r.error(steps[j]["name"], R::join(stf, "name"), "step names are unique in a probe and made of letters, digits, '_', '-', '.'");
          }
          readStepBody(r, steps[j], stf, known, &s);
          if ((s.kind == StepKind::kTcp || s.kind == StepKind::kTls) && steps.size() > 1) {
            r.error(steps[j]["url"], R::join(stf, "url"), "tcp:// and tls:// probes have a single step");
          }
          p.steps.push_back(std::move(s));
        }
      }
    } else {
      StepSpec s;
      s.name = "main";
      readStepBody(r, n, f, known, &s);
      if (s.kind == StepKind::kOAuth2) r.error(n, f, "oauth2 goes in a step of a multi-step probe");
      p.steps.push_back(std::move(s));
    }
    if (r.errors().size() == errors_before) out.push_back(std::move(p));
  }
  return out;
}

const std::vector<Condition>& effectiveConditions(const StepSpec& step) {
  // Shared by every step that sets none: 10,000 probes need not hold 20,000 copies.
  static const std::vector<Condition> kHttp = {parseCondition("[STATUS] >= 200").value(),
                                               parseCondition("[STATUS] < 300").value()};
  static const std::vector<Condition> kConnect = {parseCondition("[CONNECTED] == true").value()};
  static const std::vector<Condition> kNone;
  if (!step.conditions.empty()) return step.conditions;
  switch (step.kind) {
    case StepKind::kHttp: return kHttp;
    case StepKind::kTcp:
    case StepKind::kTls: return kConnect;
    case StepKind::kOAuth2: return kNone;
  }
  return kNone;
}

uint64_t ProbeSpec::fingerprint() const {
  std::ostringstream o;
  o << interval.count() << '|' << timeout.count() << '|' << tls.insecure_skip_verify << tls.ca_file
    << '|' << tls.cert_file << '|' << tls.key_file << '|' << tls.server_name << '|'
    << health.failure_threshold << ',' << health.success_threshold << '|' << retry.attempts
    << ',' << retry.backoff.count() << ',' << retry.max_backoff.count();
  for (const auto& s : steps) {
    o << "|step:" << s.name << ',' << int(s.kind) << ',' << s.url << ',' << s.method << ','
      << s.body << ',' << s.follow_redirects << ',' << s.max_redirects << ','
      << int(s.http_version) << ',' << s.max_body_bytes;
    for (const auto& [k, v] : s.headers) o << ",h:" << k << '=' << v;
    for (const auto& c : s.conditions) o << ",c:" << c.text;
    for (const auto& c : s.captures) o << ",cap:" << c.name << '=' << c.source;
    const auto& a = s.oauth2;
    o << ",o:" << a.token_url << ',' << a.client_id << ',' << a.client_secret << ','
      << a.basic_auth << ',' << a.refresh_before.count() << ',' << a.capture_as;
    for (const auto& sc : a.scopes) o << ",s:" << sc;
  }
  return std::hash<std::string>{}(o.str());
}

}  // namespace greenlight::probes
