// The built-in status page: static HTML/CSS/JS served by the admin server at "/" and
// "/status/FILE". Lookup is by exact name in the embedded set, so no path reaches the disk.
#pragma once

#include <optional>
#include <string_view>

namespace greenlight::dashboards {

struct StaticAsset {
  std::string_view content_type;
  std::string_view body;
};

// `name`: "" or "index.html" for the page, else a file name such as "status.js".
std::optional<StaticAsset> statusPageAsset(std::string_view name);

}  // namespace greenlight::dashboards
