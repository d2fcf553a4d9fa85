// Files compiled into the binary at build time (cmake/embed_files.cmake): the status page's
// assets and the Grafana dashboards. Read-only, thread-safe.
#pragma once

#include <string_view>
#include <vector>

namespace greenlight::dashboards {

struct EmbeddedFile {
  std::string_view path;  // relative to its folder, e.g. "status.js", "rollouts.json"
  std::string_view data;
};

const std::vector<EmbeddedFile>& statusPageFiles();  // dashboards/status/
const std::vector<EmbeddedFile>& grafanaFiles();     // dashboards/grafana/ (JSON and provisioning YAML)

}  // namespace greenlight::dashboards
