// The `greenlight` binary: run, check-config, simulate, demo.
#include <CLI/CLI.hpp>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "greenlight/alerts/prometheus_rules.h"
#include "greenlight/app/admin_client.h"
#include "greenlight/app/app_config.h"
#include "greenlight/controller/audit_log.h"
#include "greenlight/controller/controller.h"
#include "greenlight/app/proxy_service.h"
#include "greenlight/app/secrets_command.h"
#include "greenlight/dashboards/grafana_export.h"
#include "greenlight/app/service.h"
#include "greenlight/common/files.h"
#include "greenlight/common/logging.h"
#include "greenlight/common/thread_memory.h"
#include "greenlight/simulator/simulator.h"

using namespace greenlight;

namespace {

// Blocks the signals we handle in every thread; main waits for them with sigwait.
sigset_t handledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Waits for SIGTERM/SIGINT; calls on_hup for each SIGHUP.
void waitForStop(const std::function<void()>& on_hup) {
  sigset_t set = handledSignals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      if (on_hup) on_hup();
      continue;
    }
    spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return;
  }
}

// A proxy config (top-level `proxy:`) is checked as one; anything else as a `greenlight run` config.
bool isProxyConfig(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    return root.IsMap() && root["proxy"].IsDefined();
  } catch (const YAML::Exception&) {
    return false;  // the run-config path reports the syntax error with its position
  }
}

int exportRules(const std::string& path, const std::string& out) {
  ConfigErrors errors;
  auto config = app::loadAppConfig(path, errors);
  if (!config) {
    std::cerr << errors.format();
    return 1;
  }
  const std::string text = alerts::exportPrometheusRules(config->alerting.rules, config->alerting.evaluation_interval);
  if (out.empty()) {
    std::cout << text;
    return 0;
  }
  if (Status s = writeFileAtomic(out, text, 0644); !s.ok()) {
    std::cerr << "greenlight: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

int runExportGrafana(const dashboards::GrafanaExportOptions& options) {
  auto written = dashboards::exportGrafana(options);
  if (!written.ok()) {
    std::cerr << "greenlight export grafana: " << written.status().message() << "\n";
    return 1;
  }
  for (const auto& path : written.value()) std::cout << "wrote " << path << "\n";
  std::cout << "Copy provisioning/dashboards (and provisioning/datasources, if written) into Grafana's provisioning "
               "folder; the dashboards select the data source \"" << options.datasource << "\".\n";
  return 0;
}

int checkProxyConfig(const std::string& path) {
  ConfigErrors errors;
  auto config = app::loadProxyConfig(path, errors);
  if (!config) {
    std::cerr << errors.format();
    std::cerr << errors.size() << (errors.size() == 1 ? " error" : " errors") << " in " << path << "\n";
    return 1;
  }
  size_t endpoints = 0;
  for (const auto& [name, s] : config->proxy.routes.services) endpoints += s.endpoints[0].size() + s.endpoints[1].size();
  std::cout << path << ": ok (proxy: " << config->proxy.routes.services.size() << " services, " << endpoints
            << " endpoints)\n";
  return 0;
}

int checkConfig(const std::string& path) {
  if (isProxyConfig(path)) return checkProxyConfig(path);
  ConfigErrors errors;
  auto config = app::loadAppConfig(path, errors);
  if (!config) {
    std::cerr << errors.format();
    std::cerr << errors.size() << (errors.size() == 1 ? " error" : " errors") << " in " << path << "\n";
    return 1;
  }
  size_t steps = 0;
  for (const auto& p : config->probes) steps += p.steps.size();
  std::cout << path << ": ok (" << config->probes.size() << " probes, " << steps << " steps, "
            << config->alerting.rules.size() << " alert rules, " << config->alerting.receivers.size() << " receivers, "
            << config->rollouts.services.size() << " rollout services)\n";
  return 0;
}

int runProxy(const std::string& path, std::optional<int> admin_port, bool takeover) {
  // Once a successor has the listeners, stop like on SIGTERM: finish in flight, exit.
  auto svc = app::ProxyService::start(path, admin_port, takeover, [] { ::kill(::getpid(), SIGTERM); });
  if (!svc.ok()) {
    std::cerr << "greenlight proxy: " << svc.status().message() << "\n";
    return 1;
  }
  // SIGHUP re-reads certificates and admin tokens; routes change through the runtime API, the
  // rest with `greenlight proxy --takeover` and the new config (no connection is dropped).
  waitForStop([&svc] { (void)(*svc)->reload(); });
  (*svc)->stop(std::chrono::seconds(10));  // finish requests in flight
  return 0;
}

int run(const std::string& path, std::optional<int> admin_port) {
  app::ServiceOptions opts;
  opts.config_path = path;
  opts.admin_port = admin_port;
  auto svc = app::Service::start(opts);
  if (!svc.ok()) {
    std::cerr << "greenlight run: " << svc.status().message() << "\n";
    return 1;
  }
  waitForStop([&] { (void)(*svc)->reload(); });
  (*svc)->stop();
  return 0;
}

StatusOr<std::unique_ptr<simulator::Simulator>> startSimulator(int platform_port, int admin_port,
                                                               const std::string& cert_dir,
                                                               bool tls) {
  simulator::SimulatorOptions so;
  so.platform_port = platform_port;
  so.admin_port = admin_port;
  so.cert_dir = cert_dir;
  so.tls = tls;
  so.releases = {"blue", "green"};  // two releases of a sample service, for rollouts
  if (const char* secret = std::getenv("GREENLIGHT_SIM_CLIENT_SECRET")) so.client_secret = secret;
  return simulator::Simulator::start(so);
}

// The variables examples/demo.yaml reads, so the demo works with any ports.
void exportSimulatorEnv(const simulator::Simulator& sim) {
  const std::string host = sim.options().host;
  setenv("SIM_PLATFORM_URL", (sim.scheme() + "://" + host + ":" + std::to_string(sim.platformPort())).c_str(), 1);
  setenv("SIM_PLATFORM_ADDR", (host + ":" + std::to_string(sim.platformPort())).c_str(), 1);
  for (const auto& oem : sim.oemNames()) {
    std::string up = oem;
    for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    setenv(("SIM_" + up + "_URL").c_str(), (sim.scheme() + "://" + host + ":" + std::to_string(sim.oemPort(oem))).c_str(), 1);
    setenv(("SIM_" + up + "_ADDR").c_str(), (host + ":" + std::to_string(sim.oemPort(oem))).c_str(), 1);
  }
  setenv("SIM_CA_FILE", sim.caFile().c_str(), 1);
  setenv("SIM_CLIENT_ID", sim.options().client_id.c_str(), 1);
  setenv("SIM_CLIENT_SECRET", sim.options().client_secret.c_str(), 1);
  setenv("SIM_RELEASE_BLUE_ADDR", (host + ":" + std::to_string(sim.releasePort("blue"))).c_str(), 1);
  setenv("SIM_RELEASE_GREEN_ADDR", (host + ":" + std::to_string(sim.releasePort("green"))).c_str(), 1);
  setenv("SIM_RECEIVER_URL", ("http://" + host + ":" + std::to_string(sim.adminPort()) + "/receiver").c_str(), 1);
  // Alert state and the notification outbox of the demo (kept across demo restarts).
  setenv("GREENLIGHT_DEMO_STATE_DIR", (std::filesystem::temp_directory_path() / "greenlight-demo").c_str(), 0);
}

int simulate(int platform_port, int admin_port, const std::string& cert_dir, bool no_tls) {
  (void)initLogging(LogFormat::kText, "info");
  auto sim = startSimulator(platform_port, admin_port, cert_dir, !no_tls);
  if (!sim.ok()) {
    std::cerr << "greenlight simulate: " << sim.status().message() << "\n";
    return 1;
  }
  std::cout << (*sim)->infoJson() << std::endl;
  waitForStop(nullptr);
  (*sim)->stop();
  return 0;
}

// The demo's proxy seals its routing table as the run config seals its state: the same
// `state_encryption:` section, copied (empty when there is none or the file does not parse).
std::string stateEncryptionOf(const std::string& run_config) {
  try {
    YAML::Node root = YAML::LoadFile(run_config);
    if (!root.IsMap() || !root["state_encryption"]) return "";
    YAML::Emitter e;
    e << YAML::Flow << root["state_encryption"];
    return std::string("state_encryption: ") + e.c_str() + "\n";
  } catch (const YAML::Exception&) {
    return "";
  }
}

// What the demo suggests for its sample service, from the rollout's state: on a first run v1
// is stable on blue and green idle; the state directory is kept between runs, so a later run
// may find another colour or release stable, or a rollout under way.
struct DemoRolloutHint {
  std::string now;      // what runs where
  std::string next;     // the heading of the suggested command
  std::string release;  // the release to roll out
  std::string idle;     // the colour a rollout deploys to, whose faults trigger a rollback
};
DemoRolloutHint demoRolloutHint(app::Service& svc) {
  std::string stable = "blue", idle = "green", current = "v1", under_way;
  if (controller::Controller* c = svc.controller()) {
    for (const auto& view : c->services()) {
      if (view.service != "vehicles") continue;
      stable = controller::colorName(view.state.stable);
      idle = controller::colorName(view.state.candidate());
      if (!view.state.stable_release.empty()) current = view.state.stable_release;
      if (view.state.active()) under_way = view.state.candidate_release;
    }
  }
  int n = 1;
  if (current.size() > 1 && current[0] == 'v') {
    (void)std::from_chars(current.data() + 1, current.data() + current.size(), n);
  }
  DemoRolloutHint h;
  h.idle = idle;
  h.release = "v" + std::to_string(n + 1);
  h.now = stable + " runs " + current + ", " + idle + " is idle";
  h.next = "Roll out " + h.release + " of the sample service to " + idle + ", in steps, with analysis:";
  if (!under_way.empty()) {
    h.now = "a rollout of " + under_way + " to " + idle + " is under way";
    h.next = "Follow the rollout under way, or start the next one when it is done:";
  }
  return h;
}

// `self`: how this binary was invoked (e.g. ./build/app/greenlight), for lines to copy and paste.
int demo(const std::string& self, const std::string& config, int admin_port, int sim_port, int sim_admin_port,
         int proxy_port, int proxy_admin_port) {
  (void)initLogging(LogFormat::kText, "info");
  auto sim = startSimulator(sim_port, sim_admin_port, "", true);
  if (!sim.ok()) {
    std::cerr << "greenlight demo: simulator: " << sim.status().message() << "\n";
    return 1;
  }
  exportSimulatorEnv(**sim);
  // The data plane of the demo's sample service: blue and green releases from the simulator.
  const std::string state = std::getenv("GREENLIGHT_DEMO_STATE_DIR");
  std::filesystem::create_directories(state);
  const std::string proxy_socket = state + "/proxy.sock";
  const std::string proxy_config = state + "/proxy.yaml";
  const std::string proxy_access_log = state + "/proxy-access.log";
  {
    std::ofstream out(proxy_config);
    out << "log: {level: warn}\nadmin: {listen: 127.0.0.1:0}\n" << stateEncryptionOf(config) << "proxy:\n"
        << "  state_file: " << state << "/routes.json\n  runtime_api: {socket: " << proxy_socket << "}\n"
        << "  access_log: {path: " << proxy_access_log << "}\n"
        << "  request_id: {header: X-Request-Id}\n"
        << "  services:\n    - name: vehicles\n      listen: 127.0.0.1:" << proxy_port << "\n"
        << "      blue: [" << std::getenv("SIM_RELEASE_BLUE_ADDR") << "]\n"
        << "      green: [" << std::getenv("SIM_RELEASE_GREEN_ADDR") << "]\n"
        << "      weights: {blue: 100, green: 0}\n      preview: {header: X-Greenlight-Color}\n"
        << "      health_check: {path: /health, interval: 2s, timeout: 1s}\n";
  }
  auto proxy = app::ProxyService::start(proxy_config, proxy_admin_port);
  if (!proxy.ok()) {
    std::cerr << "greenlight demo: proxy: " << proxy.status().message() << "\n";
    return 1;
  }
  const std::string proxy_url = "http://127.0.0.1:" + std::to_string((*proxy)->port("vehicles"));
  // The apps using the sample service: steady traffic (about 50 requests a second) through the
  // proxy, which is what a rollout's analysis judges.
  std::atomic<bool> traffic_done{false};
  std::thread traffic([port = (*proxy)->port("vehicles"), &traffic_done] {
    httplib::Client cli("127.0.0.1", port);
    cli.set_keep_alive(true);
    while (!traffic_done) {
      (void)cli.Get("/");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  setenv("GREENLIGHT_DEMO_PROXY_SOCKET", proxy_socket.c_str(), 1);
  setenv("GREENLIGHT_DEMO_PROXY_URL", proxy_url.c_str(), 1);
  app::ServiceOptions opts;
  opts.config_path = config;
  opts.admin_port = admin_port;
  auto svc = app::Service::start(opts);
  if (!svc.ok()) {
    std::cerr << "greenlight demo: " << svc.status().message() << "\n";
    traffic_done = true;
    traffic.join();
    return 1;
  }
  const DemoRolloutHint rollout = demoRolloutHint(**svc);
  const std::string admin = "http://127.0.0.1:" + std::to_string((*svc)->adminPort());
  const std::string faults = "http://127.0.0.1:" + std::to_string((*sim)->adminPort());
  const std::string proxy_admin = "http://127.0.0.1:" + std::to_string((*proxy)->adminPort());
  std::cout << "\nGreenlight demo is running (Ctrl-C stops everything)\n\n"
            << "  status page          " << admin << "/\n"
            << "  probe state (JSON)   " << admin << "/api/v1/probes\n"
            << "  Prometheus metrics   " << admin << "/metrics  (proxy: " << proxy_admin << "/metrics)\n"
            << "  Grafana dashboards   " << self << " export grafana --out DIR  (scrape both /metrics)\n"
            << "  health / readiness   " << admin << "/healthz  " << admin << "/readyz\n"
            << "  simulated platform   " << std::getenv("SIM_PLATFORM_URL") << "  (CA: " << (*sim)->caFile() << ")\n"
            << "  fault injection      " << faults << "/faults\n"
            << "  alerts (JSON)        " << admin << "/api/v1/alerts   (or: " << self << " alerts --url " << admin << ")\n"
            << "  demo alert receiver  " << faults << "/receiver  (what the webhook received)\n"
            << "  sample service       " << proxy_url << "  (greenlight proxy: " << rollout.now << ")\n"
            << "  its access log       tail -f " << proxy_access_log << "\n\n"
            << rollout.next << "\n"
            << "  " << self << " rollout start vehicles --release " << rollout.release << " --url " << admin << "\n"
            << "  " << self << " rollout status --url " << admin << "\n"
            << "  (break " << rollout.idle << " meanwhile to see an automatic rollback:\n"
            << "   curl -X PUT -d '{\"error_rate\":0.3,\"status\":500}' " << faults << "/faults/release-" << rollout.idle << ")\n\n"
            << "Break the BMW integration, then heal it:\n"
            << "  curl -X PUT -d '{\"error_rate\":1,\"status\":503}' " << faults << "/faults/bmw\n"
            << "  curl " << admin << "/api/v1/probes | python3 -m json.tool | less\n"
            << "  curl -X DELETE " << faults << "/faults/bmw\n"
            << std::endl;
  waitForStop([&] { (void)(*svc)->reload(); });
  (*svc)->stop();
  traffic_done = true;
  traffic.join();
  (*proxy)->stop(std::chrono::seconds(5));
  (*sim)->stop();
  return 0;
}

// `greenlight proxy` runs as greenlight-proxy, the same program linked with jemalloc, when that
// sits beside this binary: with glibc's malloc the proxy spent about 12% more CPU per request
// (its per-connection coroutine frames and header fields overflow glibc's per-thread cache);
// jemalloc in the probe engine, though, raised its resident memory by a fifth, so the other
// commands keep glibc. The arguments, process id and open descriptors stay as they are.
void runProxyWithJemalloc(char** argv) {
  if (jemallocLinked()) return;  // this is the jemalloc build
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return;
  const auto sibling = self.parent_path() / "greenlight-proxy";
  if (::access(sibling.c_str(), X_OK) != 0) return;
  ::execv(sibling.c_str(), argv);
  spdlog::warn("proxy: could not start {} ({}); running with glibc's malloc", sibling.string(), std::strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
  // Each probe run allocates and frees a few KB on the loop thread. In a per-thread malloc arena
  // glibc grew that arena's heap with an mprotect call about twice per probe (strace: ~6,000 a
  // second at 2,000 probes/s). One arena (brk-grown, trimmed past 8 MiB) has none; the other
  // threads (admin API) allocate little. malloc_trim after a config load still returns large
  // frees. Not for `greenlight proxy`: its event-loop threads all allocate per request, and one
  // shared arena would make them wait on its lock (set below, once the command is known).
  const auto oneArena = [] {
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
  };
  sigset_t set = handledSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App cli{"Greenlight: synthetic probes, alerting and zero-downtime blue/green rollouts"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", "greenlight 0.1.0");

  std::string config;
  std::optional<int> admin_port;
  auto* run_cmd = cli.add_subcommand("run", "Run probes, alerting and the rollout controller from a config file");
  run_cmd->add_option("-c,--config", config, "Config file (YAML)")->required()->check(CLI::ExistingFile);
  run_cmd->add_option("--admin-port", admin_port, "Override admin.listen's port (0 picks a free one)");

  std::string proxy_config;
  std::optional<int> proxy_admin_port;
  auto* proxy_cmd = cli.add_subcommand("proxy", "Run the blue/green data plane (reverse proxy) from a config file");
  proxy_cmd->add_option("-c,--config", proxy_config, "Config file (YAML)")->required()->check(CLI::ExistingFile);
  proxy_cmd->add_option("--admin-port", proxy_admin_port, "Override admin.listen's port (0 picks a free one)");
  bool proxy_takeover = false;
  proxy_cmd->add_flag("--takeover", proxy_takeover,
                      "Take the listening sockets of the proxy running on the same runtime socket (zero-downtime restart or config change); it then exits");

  std::string check_path;
  auto* check_cmd = cli.add_subcommand("check-config", "Validate a run or proxy config file and print every error");
  check_cmd->add_option("file", check_path, "Config file (YAML)")->required();

  int sim_port = 0, sim_admin_port = 0;
  std::string cert_dir;
  bool no_tls = false;
  auto* sim_cmd = cli.add_subcommand("simulate", "Serve a simulated connected-car platform and OEM APIs");
  sim_cmd->add_option("--port", sim_port, "Platform port (0 picks a free one)");
  sim_cmd->add_option("--admin-port", sim_admin_port, "Fault-injection port (0 picks a free one)");
  sim_cmd->add_option("--cert-dir", cert_dir, "Where to write the generated CA and certificates");
  sim_cmd->add_flag("--no-tls", no_tls, "Serve plain HTTP");

  std::string demo_config = "examples/demo.yaml";
  int demo_admin_port = 9470;
  auto* demo_cmd = cli.add_subcommand("demo", "Start the simulator, a sample service behind greenlight proxy, and greenlight run on examples/demo.yaml");
  demo_cmd->add_option("-c,--config", demo_config, "Demo config")->check(CLI::ExistingFile);
  demo_cmd->add_option("--admin-port", demo_admin_port, "Admin API port");
  demo_cmd->add_option("--sim-port", sim_port, "Simulated platform port (0 picks a free one)");
  demo_cmd->add_option("--sim-admin-port", sim_admin_port, "Fault-injection port (0 picks a free one)");
  int demo_proxy_port = 9480;
  demo_cmd->add_option("--proxy-port", demo_proxy_port, "The sample service's proxy port (0 picks a free one)");
  int demo_proxy_admin_port = 9481;
  demo_cmd->add_option("--proxy-admin-port", demo_proxy_admin_port, "The proxy's admin port: /metrics, runtime API (0 picks a free one)");

  app::ClientOptions client;
  if (const char* url = std::getenv("GREENLIGHT_URL")) client.url = url;
  auto addClientOptions = [&client](CLI::App* c) {
    c->add_option("--url", client.url, "Admin API of `greenlight run` (default $GREENLIGHT_URL or http://127.0.0.1:9470)");
    c->add_option("--token-file", client.token_file, "File holding the bearer token (default: $GREENLIGHT_TOKEN)");
    c->add_option("--ca-file", client.ca_file, "CA certificate(s) to verify an https:// admin API");
    c->add_flag("--json", client.json, "Print the API's JSON");
  };
  auto* alerts_cmd = cli.add_subcommand("alerts", "List pending and firing alerts of a running greenlight");
  addClientOptions(alerts_cmd);
  auto* silence_cmd = cli.add_subcommand("silence", "Silence alerts: add, list, expire");
  silence_cmd->require_subcommand(1);
  std::vector<std::string> silence_matchers;
  std::string silence_duration = "1h", silence_comment, silence_id;
  auto* silence_add = silence_cmd->add_subcommand("add", "Silence alerts matching every matcher (oem=bmw, severity=~page|ticket)");
  silence_add->add_option("matchers", silence_matchers, "Label matchers")->required();
  silence_add->add_option("-d,--duration", silence_duration, "How long (e.g. 2h)");
  silence_add->add_option("--comment", silence_comment, "Why (required)")->required();
  addClientOptions(silence_add);
  auto* silence_list = silence_cmd->add_subcommand("list", "List silences");
  addClientOptions(silence_list);
  auto* silence_expire = silence_cmd->add_subcommand("expire", "End a silence now");
  silence_expire->add_option("id", silence_id, "Silence id")->required();
  addClientOptions(silence_expire);

  auto* export_cmd = cli.add_subcommand("export", "Write what other tools read: prometheus-rules, grafana");
  export_cmd->require_subcommand(1);
  std::string export_config, export_out;
  auto* export_rules = export_cmd->add_subcommand(
      "prometheus-rules", "Alerting rules of a run config as a Prometheus rule file (over the probe metrics)");
  export_rules->add_option("-c,--config", export_config, "Config file (YAML)")->required()->check(CLI::ExistingFile);
  export_rules->add_option("-o,--output", export_out, "Write to this file (default: standard output)");
  dashboards::GrafanaExportOptions grafana_options;
  auto* export_grafana = export_cmd->add_subcommand(
      "grafana", "Grafana dashboards (overview, probe detail, rollouts, SLOs) and provisioning files");
  export_grafana->add_option("-o,--out", grafana_options.out_dir, "Directory to write dashboards/ and provisioning/ into")->required();
  export_grafana->add_option("--datasource", grafana_options.datasource, "Name of the Prometheus data source in Grafana")
      ->capture_default_str();
  export_grafana->add_option("--prometheus-url", grafana_options.prometheus_url,
                             "Also write a data source provisioning file pointing at this Prometheus");
  export_grafana->add_option("--dashboards-path", grafana_options.dashboards_path,
                             "Where Grafana will find the dashboard files (default: OUT/dashboards, absolute)");

  auto* rollout_cmd = cli.add_subcommand("rollout", "Blue-green rollouts of a running greenlight: start, status, promote, ...");
  rollout_cmd->require_subcommand(1);
  std::string rollout_service, rollout_release, rollout_reason;
  std::vector<std::pair<std::string, CLI::App*>> rollout_actions;
  for (const char* action : {"start", "status", "promote", "pause", "resume", "abort", "rollback", "history"}) {
    static const std::map<std::string, std::string> what = {
        {"start", "Start rolling out a new release to the idle colour"},
        {"status", "Phase, weights, time in phase and analysis results (all services without one)"},
        {"promote", "Pass a manual gate, or skip the remaining steps"},
        {"pause", "Hold the rollout where it is"},
        {"resume", "Carry on after a pause"},
        {"abort", "All traffic back to the stable colour now"},
        {"rollback", "Abort, or after a promotion go back to the still-warm previous release"},
        {"history", "The service's audit lines: who did what, weights, verdicts"}};
    auto* sub = rollout_cmd->add_subcommand(action, what.at(action));
    auto* svc_opt = sub->add_option("service", rollout_service, "Service name (rollouts.services[].name)");
    if (std::string(action) != "status") svc_opt->required();
    if (std::string(action) == "start") sub->add_option("-r,--release", rollout_release, "The new release")->required();
    if (std::string(action) == "abort" || std::string(action) == "rollback" || std::string(action) == "pause") {
      sub->add_option("--reason", rollout_reason, "Why (goes to the audit log)");
    }
    addClientOptions(sub);
    rollout_actions.emplace_back(action, sub);
  }
  auto* audit_cmd = cli.add_subcommand("audit", "The audit log");
  audit_cmd->require_subcommand(1);
  std::string audit_path;
  auto* audit_verify = audit_cmd->add_subcommand("verify", "Check the audit log's hash chain; report the first broken line");
  audit_verify->add_option("file", audit_path, "Audit log file")->required();

  auto* secrets_cmd = cli.add_subcommand("secrets", "The sealed (AES-256-GCM) secrets file configs read as ${secret:NAME}");
  secrets_cmd->require_subcommand(1);
  app::SecretsArgs secrets_args;
  std::string keygen_out;
  auto* secrets_keygen = secrets_cmd->add_subcommand("keygen", "Write a new random 256-bit key (mode 0600)");
  secrets_keygen->add_option("-o,--out", keygen_out, "Key file to create")->required();
  auto keyOptions = [&](CLI::App* sub) {
    sub->add_option("--key-file", secrets_args.key_file, "Key file (64 hex digits, mode 0600)");
    sub->add_option("--key-env", secrets_args.key_env, "Environment variable holding the key");
  };
  auto* secrets_encrypt = secrets_cmd->add_subcommand("encrypt", "Seal a plain YAML map of name: value");
  keyOptions(secrets_encrypt);
  secrets_encrypt->add_option("-i,--in", secrets_args.in, "Plain YAML file")->required()->check(CLI::ExistingFile);
  secrets_encrypt->add_option("-o,--out", secrets_args.out, "Sealed file to write")->required();
  auto* secrets_decrypt = secrets_cmd->add_subcommand("decrypt", "Print a sealed secrets file as YAML");
  keyOptions(secrets_decrypt);
  secrets_decrypt->add_option("-i,--in", secrets_args.in, "Sealed file")->required()->check(CLI::ExistingFile);
  auto* secrets_rotate = secrets_cmd->add_subcommand("rotate-key", "Re-seal a secrets file with a new key, in place");
  keyOptions(secrets_rotate);
  secrets_rotate->add_option("-i,--in", secrets_args.in, "Sealed file")->required()->check(CLI::ExistingFile);
  secrets_rotate->add_option("--new-key-file", secrets_args.new_key_file, "The new key file")->required()->check(CLI::ExistingFile);

  auto* token_cmd = cli.add_subcommand("token", "Admin API bearer tokens: new ones, and their salted hashes for the config");
  token_cmd->require_subcommand(1);
  std::string token_name = "ops", token_role = "operator";
  auto* token_new = token_cmd->add_subcommand("new", "Print a new random token and its config entry (token_hash)");
  token_new->add_option("--name", token_name, "Who the token is for (shows in logs and the audit log)");
  token_new->add_option("--role", token_role, "viewer, operator or admin")->check(CLI::IsMember({"viewer", "operator", "admin"}));
  auto* token_hash = token_cmd->add_subcommand("hash", "Read a token on stdin, print its salted hash for token_hash");

  CLI11_PARSE(cli, argc, argv);
  if (*token_new) return app::tokenNew(token_name, token_role);
  if (*token_hash) return app::tokenHash(std::cin);
  if (*secrets_keygen) return app::secretsKeygen(keygen_out);
  if (*secrets_encrypt) return app::secretsEncrypt(secrets_args);
  if (*secrets_decrypt) return app::secretsDecrypt(secrets_args);
  if (*secrets_rotate) return app::secretsRotateKey(secrets_args);
  if (!*proxy_cmd) oneArena();  // before any thread of the probe engine starts
  for (const auto& [action, sub] : rollout_actions) {
    if (*sub) return app::rolloutCommand(client, action, rollout_service, rollout_release, rollout_reason);
  }
  if (*audit_verify) {
    const auto v = controller::verifyAuditLog(audit_path);
    if (v.ok) {
      std::cout << audit_path << ": " << v.lines << " lines, chain intact\n";
      return 0;
    }
    std::cerr << audit_path << ":" << v.first_bad_line << ": " << v.why << "\n";
    return 1;
  }
  if (*export_rules) return exportRules(export_config, export_out);
  if (*export_grafana) return runExportGrafana(grafana_options);
  if (*alerts_cmd) return app::alertsCommand(client);
  if (*silence_add) return app::silenceAddCommand(client, silence_matchers, silence_duration, silence_comment);
  if (*silence_list) return app::silenceListCommand(client);
  if (*silence_expire) return app::silenceExpireCommand(client, silence_id);
  if (*run_cmd) return run(config, admin_port);
  if (*proxy_cmd) {
    runProxyWithJemalloc(argv);  // returns only where there is no jemalloc build to run
    return runProxy(proxy_config, proxy_admin_port, proxy_takeover);
  }
  if (*check_cmd) return checkConfig(check_path);
  if (*sim_cmd) return simulate(sim_port, sim_admin_port, cert_dir, no_tls);
  if (*demo_cmd) return demo(argv[0], demo_config, demo_admin_port, sim_port, sim_admin_port, demo_proxy_port,
                             demo_proxy_admin_port);
  return 2;
}
