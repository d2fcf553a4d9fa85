// Writes the Grafana dashboards and provisioning files for users who provision Grafana from
// files: `greenlight export grafana --out DIR [--datasource NAME] [--prometheus-url URL]`.
#pragma once

#include <string>
#include <vector>

#include "greenlight/common/status.h"

namespace greenlight::dashboards {

struct GrafanaExportOptions {
  std::string out_dir;
  std::string datasource = "Prometheus";  // the data source the dashboards select by default
  std::string prometheus_url;             // when set, a data source provisioning file is written too
  // Where Grafana will read the dashboards from (the provider's path); default: out_dir/dashboards.
  std::string dashboards_path;
};

// Returns the dashboard JSON with the `datasource` variable preselected to `datasource`.
StatusOr<std::string> withDatasource(std::string_view dashboard_json, const std::string& datasource);

// Writes out_dir/dashboards/*.json and out_dir/provisioning/{dashboards,datasources}/greenlight.yaml.
// Returns the paths written.
StatusOr<std::vector<std::string>> exportGrafana(const GrafanaExportOptions& options);

}  // namespace greenlight::dashboards
