// Holds the live routing table. Requests read a snapshot (an atomic shared_ptr load, no lock);
// a change is persisted atomically to the state file *before* it takes effect, so a proxy
// restarted after any acknowledged change comes back with it. Thread-safe.
#pragma once

#include "greenlight/common/sealed.h"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "greenlight/proxy/runtime_command.h"

namespace greenlight::proxy {

class RoutingStore {
 public:
  // `state_file` may be empty (no persistence). If it exists, its weights and endpoint states
  // override the config's.
  // With `state_key` the file is sealed (AES-256-GCM) and a tampered one refused at open.
  static StatusOr<std::unique_ptr<RoutingStore>> open(RoutingTable from_config, std::string state_file,
                                                      std::optional<AesKey> state_key = std::nullopt);

  std::shared_ptr<const RoutingTable> current() const { return table_.load(); }

  // The table as one event loop sees it, for the per-request path. An atomic shared_ptr's load
  // takes a lock bit and the table's reference count, both on words every loop writes: a cache
  // line bounced between cores on every request. A Reader checks a change counter (read-only
  // until a change) and reloads only after a change, so the next request after a change that
  // has returned still sees it. One per loop; not thread-safe.
  class Reader {
   public:
    explicit Reader(const RoutingStore& store) : store_(&store) {}
    std::shared_ptr<const RoutingTable> current() {
      const uint64_t g = store_->changes_.load(std::memory_order_acquire);
      if (!local_ || g != seen_) {
        // The loop's own reference-counted handle on the shared table: copies per request
        // count on it, not on the table's shared count.
        auto holder = std::make_shared<std::shared_ptr<const RoutingTable>>(store_->table_.load());
        local_ = std::shared_ptr<const RoutingTable>(holder, holder->get());
        seen_ = g;
      }
      return local_;
    }

   private:
    const RoutingStore* store_;
    uint64_t seen_ = 0;
    std::shared_ptr<const RoutingTable> local_;
  };
  // Runs a runtime command; a change is written to the state file, then swapped in, then logged
  // with `who` and old and new values. `stats` fills in "show stats".
  CommandResult execute(std::string_view line, const std::string& who,
                        const std::function<std::string()>& stats = nullptr);
  void onChange(std::function<void(const RoutingTable&)> listener);

 private:
  RoutingStore() = default;
  std::atomic<std::shared_ptr<const RoutingTable>> table_;
  std::atomic<uint64_t> changes_{0};  // bumped after each swap of table_
  std::string state_file_;
  std::optional<AesKey> state_key_;
  std::mutex change_mu_;  // one change at a time
  std::vector<std::function<void(const RoutingTable&)>> listeners_;
};

}  // namespace greenlight::proxy
