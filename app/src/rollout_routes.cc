#include "rollout_routes.h"

#include <nlohmann/json.hpp>
#include <regex>

#include "greenlight/common/json_body.h"

namespace greenlight::app {

using nlohmann::json;

namespace {
AdminResponse disabled() { return errorResponse(404, "no rollouts: section in the config"); }
}  // namespace

void registerRolloutRoutes(AdminServer& admin, std::function<controller::Controller*()> get, const TimeSource& time) {
  admin.handle("GET", "/api/v1/rollouts", Role::kViewer, [get, &time](const AdminRequest&) {
    auto* c = get();
    if (!c) return disabled();
    return jsonResponse(200, controller::servicesToJson(c->services(), time.wallNow()));
  });
  admin.handle("GET", "/api/v1/rollouts/([A-Za-z0-9_.-]{1,128})", Role::kViewer, [get, &time](const AdminRequest& req) {
    auto* c = get();
    if (!c) return disabled();
    for (const auto& v : c->services()) {
      if (v.service == req.matches.at(1)) {
        return jsonResponse(200, json::parse(controller::servicesToJson({v}, time.wallNow()))[0].dump());
      }
    }
    return errorResponse(404, "no service named \"" + req.matches.at(1) + "\"");
  });
  admin.handle("GET", "/api/v1/rollouts/([A-Za-z0-9_.-]{1,128})/history", Role::kViewer, [get](const AdminRequest& req) {
    auto* c = get();
    if (!c) return disabled();
    auto h = c->history(req.matches.at(1), 200);
    if (!h.ok()) return errorResponse(409, h.status().message());
    json out = json::array();
    for (const auto& line : h.value()) out.push_back(json::parse(line));
    return jsonResponse(200, out.dump());
  });
  admin.handle(
      "POST", "/api/v1/rollouts/([A-Za-z0-9_.-]{1,128})/(start|promote|pause|resume|abort|rollback)", Role::kOperator,
      [get, &time](const AdminRequest& req) {
        auto* c = get();
        if (!c) return disabled();
        static const std::map<std::string, controller::EventKind> kinds = {
            {"start", controller::EventKind::kStart},   {"promote", controller::EventKind::kPromote},
            {"pause", controller::EventKind::kPause},   {"resume", controller::EventKind::kResume},
            {"abort", controller::EventKind::kAbort},   {"rollback", controller::EventKind::kRollback}};
        std::string release, reason;
        if (!req.body.empty()) {
          const JsonBody parsed = parseJsonBody(req.body);
          if (!parsed.status.ok()) return errorResponse(parsed.http_status, parsed.status.message());
          const json& b = parsed.value;
          if (!b.is_object()) return errorResponse(400, "body: expected a JSON object");
          for (auto it = b.begin(); it != b.end(); ++it) {
            if (it.key() != "release" && it.key() != "reason") return errorResponse(400, "unknown field \"" + it.key() + "\"");
            if (!it.value().is_string()) return errorResponse(400, it.key() + ": expected a string");
          }
          release = b.value("release", "");
          reason = b.value("reason", "");
        }
        static const std::regex release_re("[A-Za-z0-9_.:+-]{1,128}");
        if (req.matches.at(2) == "start" && !std::regex_match(release, release_re)) {
          return errorResponse(400, "release: expected a name like v2 or 2026.11.27-1 (letters, digits, . _ : + -)");
        }
        if (reason.size() > 1024) return errorResponse(400, "reason: at most 1024 characters");
        auto r = c->command(req.matches.at(1), kinds.at(req.matches.at(2)), req.principal, release, reason);
        if (!r.ok()) return errorResponse(r.status().code() == StatusCode::kNotFound ? 404 : 409, r.status().message());
        return jsonResponse(200, json::parse(controller::servicesToJson({r.value()}, time.wallNow()))[0].dump());
      });
}

}  // namespace greenlight::app
