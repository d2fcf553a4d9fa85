#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "greenlight/common/files.h"
#include "greenlight/dashboards/embedded.h"
#include "greenlight/dashboards/grafana_export.h"
#include "greenlight/dashboards/status_page.h"
#include "support/test_support.h"

namespace greenlight::dashboards {
namespace {

using nlohmann::json;

TEST(StatusPage, ServesEmbeddedFilesByExactNameOnly) {
  auto index = statusPageAsset("");
  ASSERT_TRUE(index.has_value());
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_NE(index->body.find("/status/status.js"), std::string_view::npos);
  auto js = statusPageAsset("status.js");
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  for (const char* hostile : {"../status.js", "/etc/passwd", "..", "status.js/", "STATUS.JS", "index.htm"}) {
    EXPECT_FALSE(statusPageAsset(hostile).has_value()) << hostile;
  }
}

TEST(GrafanaExport, EveryDashboardSelectsTheConfiguredDatasource) {
  int dashboards = 0;
  for (const auto& f : grafanaFiles()) {
    auto text = withDatasource(f.data, "Prom EU");
    ASSERT_TRUE(text.ok()) << f.path << ": " << text.status().message();
    json d = json::parse(text.value());
    bool set = false;
    for (const auto& v : d["templating"]["list"]) {
      if (v["name"] == "datasource") set = v["current"]["value"] == "Prom EU";
    }
    EXPECT_TRUE(set) << f.path;
    ++dashboards;
  }
  EXPECT_EQ(dashboards, 4);
}

TEST(GrafanaExport, WritesDashboardsAndProvisioning) {
  greenlight::testing::TempDir dir;
  GrafanaExportOptions o;
  o.out_dir = dir.path() + "/grafana";
  o.datasource = "Prometheus \"main\"";
  o.prometheus_url = "http://127.0.0.1:9090";
  auto written = exportGrafana(o);
  ASSERT_TRUE(written.ok()) << written.status().message();
  EXPECT_EQ(written.value().size(), 6u);
  auto overview = readWholeFile(o.out_dir + "/dashboards/integrations-overview.json");
  ASSERT_TRUE(overview.ok());
  EXPECT_EQ(json::parse(overview.value())["uid"], "greenlight-overview");
  auto provider = readWholeFile(o.out_dir + "/provisioning/dashboards/greenlight.yaml");
  ASSERT_TRUE(provider.ok());
  EXPECT_NE(provider.value().find("path: \"" + std::filesystem::absolute(o.out_dir + "/dashboards").lexically_normal().string() + "\""),
            std::string::npos) << provider.value();
  auto ds = readWholeFile(o.out_dir + "/provisioning/datasources/greenlight.yaml");
  ASSERT_TRUE(ds.ok());
  EXPECT_NE(ds.value().find("name: \"Prometheus \\\"main\\\"\""), std::string::npos) << "name quoted: " << ds.value();
}

TEST(GrafanaExport, RefusesABadPrometheusUrl) {
  greenlight::testing::TempDir dir;
  GrafanaExportOptions o;
  o.out_dir = dir.path();
  o.prometheus_url = "127.0.0.1:9090";
  auto written = exportGrafana(o);
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.status().message().find("--prometheus-url"), std::string::npos);
}

}  // namespace
}  // namespace greenlight::dashboards
