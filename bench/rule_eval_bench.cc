// Rule-evaluation cost at scale: 10,000 probe series under three rules (probe health, a
// per-probe failure ratio, an SLO burn rate by OEM). What one probe result costs on the probe
// loop, and what one evaluation tick over every series costs.
#include <benchmark/benchmark.h>

#include "greenlight/alerts/rule_engine.h"

using namespace greenlight;
using namespace greenlight::alerts;
using namespace std::chrono_literals;

namespace {

std::vector<RuleSpec> rules() {
  RuleSpec health;
  health.name = "ProbeFailing";
  health.kind = RuleKind::kProbeHealth;
  RuleSpec ratio;
  ratio.name = "ProbeErrors";
  ratio.kind = RuleKind::kFailureRatio;
  ratio.window = 5min;
  ratio.threshold = 0.2;
  RuleSpec burn;
  burn.name = "OemBurn";
  burn.kind = RuleKind::kBurnRate;
  burn.by = {"oem"};
  burn.burn_windows = defaultBurnWindows();
  return {health, ratio, burn};
}

std::vector<Labels> series(int n) {
  static const char* oems[] = {"tesla", "bmw", "ford", "hyundai"};
  std::vector<Labels> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({{"probe", "probe-" + std::to_string(i)}, {"oem", oems[i % 4]}, {"integration", "odometer"}});
  }
  return out;
}

}  // namespace

static void BM_ObserveOneResult(benchmark::State& state) {
  SimulatedTimeSource clock;
  size_t updates = 0;
  RuleEngine engine(clock, [&](const AlertUpdate&) { ++updates; });
  engine.setRules(rules());
  const auto all = series(static_cast<int>(state.range(0)));
  for (const auto& l : all) engine.observe({l, true, 0.05, false});
  size_t i = 0;
  for (auto _ : state) {
    clock.advance(100us);
    const auto& l = all[i++ % all.size()];
    engine.observe({l, i % 50 != 0, 0.05, false});
  }
  state.counters["series"] = static_cast<double>(engine.seriesCount());
}
BENCHMARK(BM_ObserveOneResult)->Arg(10000);

static void BM_TickOverAllSeries(benchmark::State& state) {
  SimulatedTimeSource clock;
  RuleEngine engine(clock, [](const AlertUpdate&) {});
  engine.setRules(rules());
  const auto all = series(static_cast<int>(state.range(0)));
  for (int round = 0; round < 3; ++round) {
    for (const auto& l : all) engine.observe({l, true, 0.05, false});
    clock.advance(1s);
  }
  for (auto _ : state) {
    clock.advance(1s);
    engine.tick();
  }
  state.counters["series"] = static_cast<double>(engine.seriesCount());
}
BENCHMARK(BM_TickOverAllSeries)->Arg(10000)->Unit(benchmark::kMillisecond);
