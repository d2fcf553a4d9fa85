#include "greenlight/dashboards/grafana_export.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "greenlight/common/files.h"
#include "greenlight/dashboards/embedded.h"

namespace greenlight::dashboards {

using nlohmann::json;

namespace {

// A YAML double-quoted scalar: JSON string syntax is valid YAML, and escapes whatever the name holds.
std::string yamlQuoted(const std::string& s) { return json(s).dump(); }

}  // namespace

StatusOr<std::string> withDatasource(std::string_view dashboard_json, const std::string& datasource) {
  json d = json::parse(dashboard_json, nullptr, false);
  if (d.is_discarded() || !d.is_object()) return InvalidArgument("embedded dashboard is not a JSON object");
  bool found = false;
  for (auto& v : d["templating"]["list"]) {
    if (v.value("name", "") != "datasource") continue;
    v["current"] = {{"selected", true}, {"text", datasource}, {"value", datasource}};
    found = true;
  }
  if (!found) return InvalidArgument("dashboard " + d.value("uid", "?") + " has no datasource variable");
  return d.dump(2) + "\n";
}

StatusOr<std::vector<std::string>> exportGrafana(const GrafanaExportOptions& options) {
  if (options.out_dir.empty()) return InvalidArgument("--out: expected a directory to write to");
  if (options.datasource.empty()) return InvalidArgument("--datasource: expected a data source name");
  if (!options.prometheus_url.empty() && options.prometheus_url.rfind("http://", 0) != 0 &&
      options.prometheus_url.rfind("https://", 0) != 0) {
    return InvalidArgument("--prometheus-url: expected http://HOST:PORT or https://…, got \"" + options.prometheus_url + "\"");
  }
  namespace fs = std::filesystem;
  const fs::path out(options.out_dir);
  std::error_code ec;
  for (const char* sub : {"dashboards", "provisioning/dashboards", "provisioning/datasources"}) {
    fs::create_directories(out / sub, ec);
    if (ec) return Unavailable("cannot create " + (out / sub).string() + ": " + ec.message());
  }
  std::vector<std::string> written;
  for (const auto& f : grafanaFiles()) {
    if (f.path.find('/') != std::string_view::npos) continue;  // provisioning examples: written below
    auto text = withDatasource(f.data, options.datasource);
    if (!text.ok()) return text.status();
    const fs::path path = out / "dashboards" / std::string(f.path);
    if (Status s = writeFileAtomic(path.string(), text.value(), 0644); !s.ok()) return s;
    written.push_back(path.string());
  }
  const std::string dashboards_path =
      options.dashboards_path.empty() ? fs::absolute(out / "dashboards").lexically_normal().string() : options.dashboards_path;
  const std::string provider =
      "# Written by `greenlight export grafana`: Grafana loads the Greenlight dashboards from the path below.\n"
      "apiVersion: 1\nproviders:\n  - name: greenlight\n    folder: Greenlight\n    type: file\n"
      "    allowUiUpdates: true\n    updateIntervalSeconds: 30\n    options:\n      path: " +
      yamlQuoted(dashboards_path) + "\n";
  const fs::path provider_path = out / "provisioning/dashboards/greenlight.yaml";
  if (Status s = writeFileAtomic(provider_path.string(), provider, 0644); !s.ok()) return s;
  written.push_back(provider_path.string());
  if (!options.prometheus_url.empty()) {
    const std::string datasource =
        "# Written by `greenlight export grafana`: the Prometheus that scrapes greenlight run and greenlight proxy.\n"
        "apiVersion: 1\ndatasources:\n  - name: " + yamlQuoted(options.datasource) +
        "\n    type: prometheus\n    access: proxy\n    url: " + yamlQuoted(options.prometheus_url) + "\n";
    const fs::path ds_path = out / "provisioning/datasources/greenlight.yaml";
    if (Status s = writeFileAtomic(ds_path.string(), datasource); !s.ok()) return s;
    written.push_back(ds_path.string());
  }
  return written;
}

}  // namespace greenlight::dashboards
