#include "alert_routes.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "greenlight/common/duration.h"
#include "greenlight/common/json_body.h"
#include "greenlight/common/time_format.h"

namespace greenlight::app {

using nlohmann::json;

namespace {

json labelsJson(const alerts::Labels& l) {
  json j = json::object();
  for (const auto& [k, v] : l) j[k] = v;
  return j;
}

json silenceJson(const alerts::Silence& s, WallTime now) {
  json m = json::array();
  for (const auto& x : s.matchers) m.push_back(x.toString());
  const char* state = s.activeAt(now) ? "active" : s.ends_at <= now ? "expired" : "pending";
  return {{"id", s.id}, {"matchers", m}, {"starts_at", formatRfc3339(s.starts_at)}, {"ends_at", formatRfc3339(s.ends_at)},
          {"created_by", s.created_by}, {"comment", s.comment}, {"state", state}};
}

AdminResponse disabled() { return errorResponse(404, "alerting is not configured (no alerting: section)"); }

// Parses a silence from a request body; the error says which field and what was expected.
StatusOr<alerts::Silence> parseSilence(json j, const std::string& principal, WallTime now) {
  if (!j.is_object()) return InvalidArgument("body: expected a JSON object");
  static const std::set<std::string> known = {"matchers", "starts_at", "ends_at", "duration", "comment", "created_by"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!known.count(it.key())) return InvalidArgument("unknown field \"" + it.key() + "\"");
  }
  alerts::Silence s;
  if (!j.contains("matchers") || !j["matchers"].is_array() || j["matchers"].empty()) {
    return InvalidArgument("matchers: expected a non-empty list like [\"oem=bmw\"]");
  }
  for (const auto& m : j["matchers"]) {
    if (!m.is_string()) return InvalidArgument("matchers: expected strings like \"oem=bmw\"");
    auto parsed = alerts::parseMatcher(m.get<std::string>());
    if (!parsed.ok()) return InvalidArgument("matchers: " + parsed.status().message());
    s.matchers.push_back(parsed.value());
  }
  auto timeField = [&](const char* key) -> StatusOr<std::optional<WallTime>> {
    if (!j.contains(key)) return std::optional<WallTime>();
    if (!j[key].is_string()) return InvalidArgument(std::string(key) + ": expected an RFC 3339 time");
    auto t = parseRfc3339(j[key].get<std::string>());
    if (!t) return InvalidArgument(std::string(key) + ": expected an RFC 3339 time like 2026-11-27T10:00:00Z");
    return std::optional<WallTime>(*t);
  };
  auto start = timeField("starts_at");
  if (!start.ok()) return start.status();
  auto end = timeField("ends_at");
  if (!end.ok()) return end.status();
  s.starts_at = start.value().value_or(now);
  if (j.contains("duration")) {
    if (end.value()) return InvalidArgument("give ends_at or duration, not both");
    auto d = j["duration"].is_string() ? parseDuration(j["duration"].get<std::string>()) : std::nullopt;
    if (!d || *d <= Duration(0)) return InvalidArgument("duration: expected a duration like \"2h\"");
    s.ends_at = s.starts_at + std::chrono::duration_cast<WallTime::duration>(*d);
  } else if (end.value()) {
    s.ends_at = *end.value();
  } else {
    return InvalidArgument("ends_at or duration is required");
  }
  if (s.ends_at <= s.starts_at) return InvalidArgument("ends_at must be after starts_at");
  if (s.ends_at <= now) return InvalidArgument("ends_at is in the past");
  if (!j.contains("comment") || !j["comment"].is_string() || j["comment"].get<std::string>().empty()) {
    return InvalidArgument("comment: say why (it is shown to whoever the silence hides alerts from)");
  }
  s.comment = j["comment"].get<std::string>();
  if (s.comment.size() > 1024) return InvalidArgument("comment: at most 1024 characters");
  s.created_by = principal;  // who, from the token: not something the caller can claim
  return s;
}

}  // namespace

void registerAlertRoutes(AdminServer& admin, AlertEngineRef engine, const TimeSource& time) {
  admin.handle("GET", "/api/v1/alerts", Role::kViewer, [engine, &time](const AdminRequest&) {
    auto e = engine();
    if (!e) return disabled();
    const WallTime now = time.wallNow();
    json out = json::array();
    for (const auto& a : e->alerts()) {
      json silenced = json::array();
      for (const auto& id : a.mute.silenced_by) silenced.push_back(id);
      out.push_back({{"labels", labelsJson(a.instance.labels)},
                     {"annotations", labelsJson(a.instance.annotations)},
                     {"state", alerts::phaseName(a.instance.phase)},
                     {"active_since", formatRfc3339(a.instance.active_since)},
                     {"starts_at", formatRfc3339(a.instance.starts_at)},
                     {"value", a.instance.value},
                     {"silenced_by", silenced},
                     {"inhibited", a.mute.inhibited},
                     {"for_seconds", toSeconds(now - a.instance.active_since)}});
    }
    return jsonResponse(200, json{{"alerts", out}, {"outbox_depth", e->outboxDepth()}}.dump());
  });
  admin.handle("GET", "/api/v1/silences", Role::kViewer, [engine, &time](const AdminRequest&) {
    auto e = engine();
    if (!e) return disabled();
    json out = json::array();
    for (const auto& s : e->silences()) out.push_back(silenceJson(s, time.wallNow()));
    return jsonResponse(200, json{{"silences", out}}.dump());
  });
  admin.handle("POST", "/api/v1/silences", Role::kOperator, [engine, &time](const AdminRequest& req) {
    auto e = engine();
    if (!e) return disabled();
    JsonBody body = parseJsonBody(req.body);
    if (!body.status.ok()) return errorResponse(body.http_status, body.status.message());
    auto s = parseSilence(std::move(body.value), req.principal, time.wallNow());
    if (!s.ok()) return errorResponse(400, s.status().message());
    std::string matchers;
    for (const auto& m : s.value().matchers) matchers += (matchers.empty() ? "" : ",") + m.toString();
    const std::string id = e->addSilence(s.value());
    spdlog::info("audit: {} created silence {} ({}) until {}: {}", req.principal, id, matchers,
                 formatRfc3339(s.value().ends_at), s.value().comment);
    return jsonResponse(200, json{{"id", id}}.dump());
  });
  admin.handle("DELETE", "/api/v1/silences/([0-9a-f]{1,64})", Role::kOperator, [engine](const AdminRequest& req) {
    auto e = engine();
    if (!e) return disabled();
    const std::string id = req.matches.at(1);
    if (!e->expireSilence(id)) return errorResponse(404, "no active or pending silence " + id);
    spdlog::info("audit: {} expired silence {}", req.principal, id);
    return jsonResponse(200, json{{"id", id}, {"state", "expired"}}.dump());
  });
}

}  // namespace greenlight::app
