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
  // Runs a runtime command; a change is written to the state file, then swapped in, then logged
  // with `who` and old and new values. `stats` fills in "show stats".
  CommandResult execute(std::string_view line, const std::string& who,
                        const std::function<std::string()>& stats = nullptr);
  void onChange(std::function<void(const RoutingTable&)> listener);

 private:
  RoutingStore() = default;
  std::atomic<std::shared_ptr<const RoutingTable>> table_;
  std::string state_file_;
  std::optional<AesKey> state_key_;
  std::mutex change_mu_;  // one change at a time
  std::vector<std::function<void(const RoutingTable&)>> listeners_;
};

}  // namespace greenlight::proxy
