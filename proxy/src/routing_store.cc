#include "greenlight/proxy/routing_store.h"

#include <spdlog/spdlog.h>

#include "greenlight/common/files.h"

namespace greenlight::proxy {

StatusOr<std::unique_ptr<RoutingStore>> RoutingStore::open(RoutingTable table, std::string state_file,
                                                          std::optional<AesKey> state_key) {
  auto store = std::unique_ptr<RoutingStore>(new RoutingStore());
  store->state_file_ = std::move(state_file);
  store->state_key_ = std::move(state_key);
  if (!store->state_file_.empty()) {
    auto saved = readStateFile(store->state_file_, store->state_key_, "routes");
    if (!saved.ok() && saved.status().code() != StatusCode::kNotFound) return saved.status();  // tampered or wrong key
    if (saved.ok()) {
      if (Status s = applyPersisted(table, *saved); !s.ok()) {
        return InvalidArgument(store->state_file_ + ": " + s.message());
      }
      spdlog::info("routing table restored from {} (version {})", store->state_file_, table.version);
    }
  }
  store->table_.store(std::make_shared<const RoutingTable>(std::move(table)));
  return store;
}

CommandResult RoutingStore::execute(std::string_view line, const std::string& who,
                                    const std::function<std::string()>& stats) {
  std::lock_guard<std::mutex> lock(change_mu_);
  auto cur = table_.load();
  CommandResult r = runCommand(*cur, line);
  if (r.wants_stats) r.output = stats ? stats() + "\n" : "{}\n";
  if (!r.ok || !r.table) return r;
  if (!state_file_.empty()) {
    if (Status s = writeStateFile(state_file_, routesToJson(*r.table), state_key_, "routes"); !s.ok()) {
      spdlog::error("runtime change by {} refused, state not saved: {}", who, s.message());
      return CommandResult{false, "error: cannot save the routing table: " + s.message() + "\n", std::nullopt, "", false};
    }
  }
  auto next = std::make_shared<const RoutingTable>(std::move(*r.table));
  r.table.reset();
  table_.store(next);
  changes_.fetch_add(1, std::memory_order_release);
  spdlog::info("runtime change by {}: {} (version {})", who, r.change, next->version);
  for (const auto& l : listeners_) l(*next);
  return r;
}

void RoutingStore::onChange(std::function<void(const RoutingTable&)> listener) {
  std::lock_guard<std::mutex> lock(change_mu_);
  listeners_.push_back(std::move(listener));
}

}  // namespace greenlight::proxy
