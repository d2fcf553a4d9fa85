#include "greenlight/proxy/proxy_config.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <set>
#include <string_view>

#include "request_id.h"

namespace greenlight::proxy {
namespace {

using R = ConfigReader;

bool splitHostPort(const std::string& text, std::string* host, uint16_t* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  int p = -1;
  auto r = std::from_chars(text.data() + colon + 1, text.data() + text.size(), p);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() || p < 0 || p > 65535) return false;
  *host = text.substr(0, colon);
  *port = static_cast<uint16_t>(p);
  return true;
}

}  // namespace

int defaultMaxConnections() {
  constexpr rlim_t kReserve = 100;  // listeners, the admin server, the runtime socket, logs, state files
  rlimit limit{};
  rlim_t files = 1024;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) files = limit.rlim_cur;
  files = std::min<rlim_t>(files, rlim_t{1} << 21);  // RLIM_INFINITY included
  return files > kReserve + 2 ? static_cast<int>((files - kReserve) / 2) : 1;
}

namespace {

// A request target or Host value goes on the wire as it is: visible ASCII only, so nothing in
// the config can add a header or split the request.
bool visibleAscii(const std::string& v) {
  return std::all_of(v.begin(), v.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
}

// An HTTP token (RFC 9110's tchar): what a header or cookie name may be made of.
bool httpToken(const std::string& v) {
  if (v.empty() || v.size() > 256) return false;
  for (unsigned char c : v) {
    if (!std::isalnum(c) && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) return false;
  }
  return true;
}

// services[].affinity: exactly one of header, cookie, client_address: true.
Affinity parseAffinity(ConfigReader& r, const YAML::Node& a, const std::string& af) {
  Affinity out;
  if (!r.expectMap(a, af, {"header", "cookie", "client_address"})) return out;
  int given = 0;
  for (const char* key : {"header", "cookie"}) {
    const auto name = r.getString(a, af, key);
    if (!name) continue;
    ++given;
    if (!httpToken(*name)) {
      r.error(a[key], R::join(af, key), std::string("expected a ") + key + " name (letters, digits and !#$%&'*+-.^_`|~), got \"" + *name + "\"");
      continue;
    }
    out.key = std::string_view(key) == "header" ? AffinityKey::kHeader : AffinityKey::kCookie;
    out.name = *name;
    if (out.key == AffinityKey::kHeader) std::transform(out.name.begin(), out.name.end(), out.name.begin(), ::tolower);
  }
  if (const auto by_address = r.getBool(a, af, "client_address")) {
    ++given;
    if (!*by_address) r.error(a["client_address"], R::join(af, "client_address"), "expected true (leave affinity out for none), got false");
    out.key = AffinityKey::kClientAddress;
  }
  if (given != 1) r.error(a, af, "expected exactly one of header, cookie or client_address: true");
  return out;
}

std::optional<HealthCheck> parseHealthCheck(ConfigReader& r, const YAML::Node& h, const std::string& hf) {
  const size_t before = r.errors().size();
  if (!r.expectMap(h, hf, {"path", "host", "interval", "timeout", "rise", "fall"})) return std::nullopt;
  HealthCheck hc;
  if (auto v = r.getString(h, hf, "path")) {
    if (v->empty() || v->front() != '/' || v->size() > 1024 || !visibleAscii(*v)) {
      r.error(h["path"], R::join(hf, "path"),
              "expected a path such as \"/healthz\" (starting with /, up to 1024 visible ASCII characters), got \"" + *v + "\"");
    } else {
      hc.path = *v;
    }
  }
  if (auto v = r.getString(h, hf, "host")) {
    if (v->empty() || v->size() > 255 || !visibleAscii(*v)) {
      r.error(h["host"], R::join(hf, "host"), "expected a host name such as \"vehicles.internal\" (visible ASCII, no spaces)");
    } else {
      hc.host = *v;
    }
  }
  if (auto v = r.getDuration(h, hf, "interval")) {
    if (*v < 10ms || *v > 1h) r.error(h["interval"], R::join(hf, "interval"), "expected 10ms to 1h"); else hc.interval = *v;
  }
  if (auto v = r.getDuration(h, hf, "timeout")) {
    if (*v < 1ms || *v > 1min) r.error(h["timeout"], R::join(hf, "timeout"), "expected 1ms to 1m"); else hc.timeout = *v;
  }
  if (auto v = r.getInt(h, hf, "rise", 1, 100)) hc.rise = int(*v);
  if (auto v = r.getInt(h, hf, "fall", 1, 100)) hc.fall = int(*v);
  if (r.errors().size() != before) return std::nullopt;
  return hc;
}

}  // namespace

ProxyConfig parseProxyConfig(ConfigReader& r, const YAML::Node& node, const std::string& field) {
  ProxyConfig c;
  if (!node.IsDefined() || node.IsNull()) {
    r.error(node, field, "is required");
    return c;
  }
  if (!r.expectMap(node, field, {"services", "timeouts", "runtime_api", "state_file", "threads",
                                  "max_header_bytes", "max_body_bytes", "max_idle_upstream_per_endpoint",
                                  "max_connections", "passive_health", "buffer_request_bytes", "long_lived", "defer_accept", "access_log",
                                  "request_id", "spare_buffer_release"})) {
    return c;
  }
  if (auto v = r.getString(node, field, "state_file")) c.state_file = *v;
  if (auto v = r.getInt(node, field, "threads", 1, 64)) c.threads = int(*v);
  if (auto v = r.getBool(node, field, "defer_accept")) c.defer_accept = *v;
  if (auto v = r.getInt(node, field, "max_header_bytes", 1024, 1 << 20)) c.max_header_bytes = size_t(*v);
  if (auto v = r.getInt(node, field, "max_body_bytes", 0, int64_t{1} << 32)) c.max_body_bytes = size_t(*v);
  if (auto v = r.getInt(node, field, "max_idle_upstream_per_endpoint", 0, 10000)) c.max_idle_upstream_per_endpoint = size_t(*v);
  if (auto v = r.getInt(node, field, "max_connections", 1, 1 << 20)) c.max_connections = int(*v);
  if (auto v = r.getInt(node, field, "buffer_request_bytes", 0, 64 << 20)) c.buffer_request_bytes = size_t(*v);
  if (auto v = r.getDuration(node, field, "spare_buffer_release")) {
    if (*v >= std::chrono::milliseconds(100)) {
      c.spare_buffer_release = *v;
    } else {
      r.error(node["spare_buffer_release"], R::join(field, "spare_buffer_release"), "expected a duration of at least 100ms, got \"" + node["spare_buffer_release"].as<std::string>() + "\"");
    }
  }
  if (const YAML::Node ll = node["long_lived"]; ll.IsDefined() && !ll.IsNull()) {
    const std::string lf = R::join(field, "long_lived");
    if (r.expectMap(ll, lf, {"grace", "spread"})) {
      if (auto v = r.getDuration(ll, lf, "grace")) c.long_lived.grace = *v;
      if (auto v = r.getDuration(ll, lf, "spread")) c.long_lived.spread = *v;
    }
  }
  if (const YAML::Node al = node["access_log"]; al.IsDefined() && !al.IsNull()) {
    const std::string af = R::join(field, "access_log");
    if (r.expectMap(al, af, {"path", "client"})) {
      c.access_log.path = r.getString(al, af, "path", true).value_or("");
      if (auto v = r.getString(al, af, "client")) {
        if (*v == "truncated") {
          c.access_log.client = AccessLogClient::kTruncated;
        } else if (*v == "full") {
          c.access_log.client = AccessLogClient::kFull;
        } else if (*v == "none") {
          c.access_log.client = AccessLogClient::kNone;
        } else {
          r.error(al["client"], R::join(af, "client"), "expected truncated, full or none, got \"" + *v + "\"");
        }
      }
    }
  }
  if (const YAML::Node id = node["request_id"]; id.IsDefined() && !id.IsNull()) {
    const std::string idf = R::join(field, "request_id");
    if (r.expectMap(id, idf, {"header"})) {
      if (auto header = r.getString(id, idf, "header", true); header && usableRequestIdHeader(*header)) {
        c.request_id_header = *header;
      } else if (header) {
        r.error(id["header"], R::join(idf, "header"),
                "expected a header name (letters, digits, '-') that the proxy does not set itself and that carries no "
                "credentials, got \"" + *header + "\"");
      }
    }
  }
  if (const YAML::Node t = node["timeouts"]; t.IsDefined() && !t.IsNull()) {
    const std::string tf = R::join(field, "timeouts");
    if (r.expectMap(t, tf, {"connect", "header", "idle", "request"})) {
      if (auto v = r.getDuration(t, tf, "connect")) c.timeouts.connect = *v;
      if (auto v = r.getDuration(t, tf, "header")) c.timeouts.header = *v;
      if (auto v = r.getDuration(t, tf, "idle")) c.timeouts.idle = *v;
      if (auto v = r.getDuration(t, tf, "request")) c.timeouts.request = *v;
    }
  }
  if (const YAML::Node ph = node["passive_health"]; ph.IsDefined() && !ph.IsNull()) {
    const std::string pf = R::join(field, "passive_health");
    if (r.expectMap(ph, pf, {"failures", "ejection"})) {
      if (auto v = r.getInt(ph, pf, "failures", 0, 1000)) c.passive_health.failures = int(*v);
      if (auto v = r.getDuration(ph, pf, "ejection")) c.passive_health.ejection = *v;
    }
  }
  if (const YAML::Node a = node["runtime_api"]; a.IsDefined() && !a.IsNull()) {
    const std::string af = R::join(field, "runtime_api");
    if (r.expectMap(a, af, {"socket"})) c.runtime_socket = r.getString(a, af, "socket", true).value_or("");
  }
  const YAML::Node services = node["services"];
  const std::string sf = R::join(field, "services");
  if (!services.IsDefined() || !r.expectSequence(services, sf)) {
    if (!services.IsDefined()) r.error(node, sf, "is required: at least one service");
    return c;
  }
  std::set<std::string> names;
  std::set<std::pair<std::string, uint16_t>> listens;
  for (size_t i = 0; i < services.size(); ++i) {
    const YAML::Node s = services[i];
    const std::string f = R::index(sf, i);
    if (!r.expectMap(s, f, {"name", "listen", "blue", "green", "weights", "preview", "affinity", "mirror", "tls", "health_check"})) continue;
    ServiceRoutes routes;
    routes.name = r.getString(s, f, "name", true).value_or("");
    const bool duplicate = !routes.name.empty() && !names.insert(routes.name).second;
    if (duplicate) {
      r.error(s["name"], R::join(f, "name"), "another service already has the name \"" + routes.name + "\"");
    }
    ListenerConfig l;
    l.service = routes.name;
    l.field = f;
    if (const YAML::Node t = s["tls"]; t.IsDefined() && !t.IsNull()) {
      const std::string tf = R::join(f, "tls");
      if (r.expectMap(t, tf, {"cert_file", "key_file", "client_ca_file"})) {
        l.tls_cert_file = r.getString(t, tf, "cert_file", true).value_or("");
        l.tls_key_file = r.getString(t, tf, "key_file", true).value_or("");
        l.tls_client_ca_file = r.getString(t, tf, "client_ca_file").value_or("");
      }
    }
    if (auto listen = r.getString(s, f, "listen", true)) {
      if (!splitHostPort(*listen, &l.host, &l.port)) {
        r.error(s["listen"], R::join(f, "listen"), "expected host:port such as \"127.0.0.1:8080\", got \"" + *listen + "\"");
      } else if (!listens.insert({l.host, l.port}).second && l.port != 0) {
        r.error(s["listen"], R::join(f, "listen"), "another service already listens on " + *listen);
      }
    }
    for (Color color : {Color::kBlue, Color::kGreen}) {
      const char* key = colorName(color);
      for (const auto& addr : r.getStringList(s, f, key)) {
        Endpoint e;
        e.address = addr;
        if (!splitHostPort(addr, &e.host, &e.port) || e.port == 0) {
          r.error(s[key], R::join(f, key), "expected host:port endpoints, got \"" + addr + "\"");
          continue;
        }
        routes.endpoints[static_cast<int>(color)].push_back(e);
      }
    }
    if (routes.endpoints[0].empty() && routes.endpoints[1].empty()) {
      r.error(s, f, "needs at least one endpoint in blue or green");
    }
    if (const YAML::Node wn = s["weights"]; wn.IsDefined() && !wn.IsNull()) {
      const std::string wf = R::join(f, "weights");
      if (r.expectMap(wn, wf, {"blue", "green"})) {
        auto b = r.getInt(wn, wf, "blue", 0, 100, true), g = r.getInt(wn, wf, "green", 0, 100, true);
        if (b && g) {
          if (*b + *g != 100) r.error(wn, wf, "blue and green must add up to 100");
          routes.weight = {int(*b), int(*g)};
        }
      }
    } else {
      routes.weight = routes.endpoints[0].empty() ? std::array<int, 2>{0, 100} : std::array<int, 2>{100, 0};
    }
    for (Color color : {Color::kBlue, Color::kGreen}) {
      if (routes.weight[static_cast<int>(color)] > 0 && routes.endpoints[static_cast<int>(color)].empty()) {
        r.error(s, f, std::string(colorName(color)) + " has weight but no endpoints");
      }
    }
    if (const YAML::Node p = s["preview"]; p.IsDefined() && !p.IsNull()) {
      const std::string pf = R::join(f, "preview");
      if (r.expectMap(p, pf, {"header", "cookie"})) {
        routes.preview_header = r.getString(p, pf, "header").value_or("");
        std::transform(routes.preview_header.begin(), routes.preview_header.end(), routes.preview_header.begin(), ::tolower);
        routes.preview_cookie = r.getString(p, pf, "cookie").value_or("");
      }
    }
    if (const YAML::Node mn = s["mirror"]; mn.IsDefined() && !mn.IsNull()) {
      const std::string mf = R::join(f, "mirror");
      if (r.expectMap(mn, mf, {"percent"})) {
        if (auto p = r.getInt(mn, mf, "percent", 0, 100, true)) routes.mirror = static_cast<int>(*p);
      }
    }
    if (const YAML::Node a = s["affinity"]; a.IsDefined() && !a.IsNull()) routes.affinity = parseAffinity(r, a, R::join(f, "affinity"));
    std::optional<HealthCheck> check;
    if (const YAML::Node h = s["health_check"]; h.IsDefined() && !h.IsNull()) check = parseHealthCheck(r, h, R::join(f, "health_check"));
    if (duplicate) continue;
    if (check) c.health_checks[routes.name] = *check;
    c.listeners.push_back(l);
    c.routes.services[routes.name] = std::move(routes);
  }
  return c;
}

}  // namespace greenlight::proxy
