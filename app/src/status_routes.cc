#include "status_routes.h"

#include "greenlight/dashboards/status_page.h"

namespace greenlight::app {
namespace {

AdminResponse asset(std::string_view name) {
  auto a = dashboards::statusPageAsset(name);
  if (!a) return errorResponse(404, "no such file");
  AdminResponse r;
  r.content_type = std::string(a->content_type);
  r.body = std::string(a->body);
  // Scripts and styles only from this server, no framing (clickjacking the action buttons).
  r.headers = {{"Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"},
               {"X-Frame-Options", "DENY"},
               {"Referrer-Policy", "no-referrer"},
               {"Cache-Control", "no-cache"}};
  return r;
}

}  // namespace

void registerStatusRoutes(AdminServer& admin) {
  admin.handle("GET", "/", Role::kNone, [](const AdminRequest&) { return asset("index.html"); });
  admin.handle("GET", "/status/?", Role::kNone, [](const AdminRequest&) { return asset("index.html"); });
  // Exact names from the embedded set only: nothing is looked up on disk.
  admin.handle("GET", "/status/([A-Za-z0-9_.-]{1,64})", Role::kNone,
               [](const AdminRequest& req) { return asset(req.matches.at(1)); });
}

}  // namespace greenlight::app
