#include "greenlight/dashboards/status_page.h"

#include "greenlight/dashboards/embedded.h"

namespace greenlight::dashboards {
namespace {

std::string_view contentTypeOf(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

}  // namespace

std::optional<StaticAsset> statusPageAsset(std::string_view name) {
  if (name.empty()) name = "index.html";
  for (const auto& f : statusPageFiles()) {
    if (f.path == name) return StaticAsset{contentTypeOf(name), f.data};
  }
  return std::nullopt;
}

}  // namespace greenlight::dashboards
