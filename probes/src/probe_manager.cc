#include "greenlight/probes/probe_manager.h"

#include <set>

namespace greenlight::probes {

ProbeManager::ProbeManager(Transport& transport, Scheduler& scheduler, RandomSource& random,
                           std::shared_ptr<ProbeMetrics> metrics)
    : transport_(transport), scheduler_(scheduler), random_(random), metrics_(std::move(metrics)) {}

ProbeManager::~ProbeManager() { stopAll(); }

void ProbeManager::stopAll() {
  for (auto& [name, slot] : slots_) {
    scheduler_.cancel(slot.timer);
    if (slot.run) slot.run->cancel();
    metrics_->removeProbe(name);
  }
  slots_.clear();
  for (auto& [id, run] : one_offs_) run->cancel();
  one_offs_.clear();
  std::lock_guard<std::mutex> lock(status_mu_);
  status_.clear();
}

void ProbeManager::apply(std::vector<ProbeSpec> specs) {
  std::set<std::string> wanted;
  for (const auto& spec : specs) wanted.insert(spec.name);
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    scheduler_.cancel(it->second.timer);
    if (it->second.run) it->second.run->cancel();
    metrics_->removeProbe(it->first);
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      status_.erase(it->first);
    }
    it = slots_.erase(it);
  }
  for (auto& owned : specs) {
    const uint64_t fp = owned.fingerprint();
    auto shared = std::make_shared<const ProbeSpec>(std::move(owned));
    const ProbeSpec& spec = *shared;
    auto it = slots_.find(spec.name);
    metrics_->setProbe(spec);
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      status_[spec.name].spec = shared;
    }
    if (it != slots_.end() && it->second.fingerprint == fp) {
      it->second.spec = shared;  // labels may differ: the next run reports them
      continue;
    }
    Slot& slot = slots_[spec.name];
    scheduler_.cancel(slot.timer);
    if (slot.run) slot.run->cancel();
    slot.run.reset();
    slot.spec = shared;
    slot.fingerprint = fp;
    slot.health = HealthState{};
    // Spread first runs over one interval so a config of many probes never starts in a burst.
    slot.planned = scheduler_.time().monotonicNow() +
                   std::chrono::duration_cast<Duration>(spec.interval * random_.uniform01());
    schedule(slot);
  }
}

void ProbeManager::schedule(Slot& slot) {
  slot.timer = scheduler_.scheduleAt(slot.planned, [this, &slot] { tick(slot); });
}

void ProbeManager::runOnce(const std::string& name, const Headers& extra, OnceDone done) {
  auto it = slots_.find(name);
  if (it == slots_.end()) {
    done(std::nullopt);
    return;
  }
  auto spec = std::make_shared<ProbeSpec>(*it->second.spec);
  for (auto& step : spec->steps) {
    if (step.kind != StepKind::kHttp) continue;
    for (const auto& h : extra) step.headers.push_back(h);
  }
  const uint64_t id = ++next_one_off_;
  one_offs_[id] = ProbeRun::start(spec, RunContext{transport_, scheduler_, random_, tokens_},
                                  [this, id, done = std::move(done)](ProbeResult r) {
                                    one_offs_.erase(id);
                                    done(std::move(r));
                                  });
}

void ProbeManager::tick(Slot& slot) {
  const MonoTime now = scheduler_.time().monotonicNow();
  metrics_->observeLateness(now - slot.planned);
  if (slot.run) {
    metrics_->countSkipped(slot.spec->name);  // the previous run is still going: never twice at once
  } else {
    slot.run = ProbeRun::start(slot.spec, RunContext{transport_, scheduler_, random_, tokens_},
                               [this, &slot](ProbeResult r) { onResult(slot, std::move(r)); });
  }
  // Fixed rate: the next run is planned from the plan, not from now; a long stall skips the
  // missed runs instead of firing them in a burst.
  slot.planned += slot.spec->interval;
  if (slot.planned <= now) {
    auto missed = (now - slot.planned) / slot.spec->interval + 1;
    slot.planned += slot.spec->interval * missed;
  }
  schedule(slot);
}

void ProbeManager::onResult(Slot& slot, ProbeResult result) {
  const std::string& name = slot.spec->name;
  slot.run.reset();
  const HealthState prev = slot.health;
  slot.health = nextHealth(slot.spec->health, prev, result.success);
  const HealthTransition transition = transitionOf(prev, slot.health);
  metrics_->record(result, slot.health, scheduler_.time().wallNow());
  for (const auto& l : listeners_) l(*slot.spec, result, slot.health, transition);
  std::lock_guard<std::mutex> lock(status_mu_);
  auto& st = status_[name];
  st.health = slot.health;
  if (st.recent.size() >= ProbeStatus::kRecentRuns) st.recent.erase(st.recent.begin());
  st.recent.push_back({static_cast<float>(std::chrono::duration<double, std::milli>(result.duration).count()), result.success});
  st.last = std::move(result);
}

std::vector<ProbeStatus> ProbeManager::snapshot() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  std::vector<ProbeStatus> out;
  out.reserve(status_.size());
  for (const auto& [name, st] : status_) out.push_back(st);
  return out;
}

}  // namespace greenlight::probes
