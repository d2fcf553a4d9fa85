// The audit log: who changed what, append-only JSON lines, each carrying the SHA-256 of the line
// before it (a hash chain), so a line edited, removed or reordered afterwards is detected by
// `greenlight audit verify`. Every append is fsync'd. Thread-safe.
#pragma once

#include <memory>
#include <array>
#include <mutex>
#include <optional>
#include <string>

#include "greenlight/common/status.h"
#include "greenlight/common/time_source.h"

namespace greenlight::controller {

struct AuditEntry {
  std::string actor;    // token name, "controller" for its own decisions
  std::string action;   // start, shift, promote, rollback, pause, silence_add, ...
  std::string service;
  std::string release;
  std::string detail;   // e.g. "blue 50% -> 0%, green 50% -> 100%", or why
  // Traffic changes: the weights (blue, green) before and after, as `weights_before` and
  // `weights_after` objects in the line.
  std::optional<std::array<int, 2>> weights_before, weights_after;
};

class AuditLog {
 public:
  // Opens (creating) `path` and continues its chain; a broken chain is an error.
  static StatusOr<std::unique_ptr<AuditLog>> open(const std::string& path, const TimeSource& time);
  Status append(const AuditEntry& e);
  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, const TimeSource& time, std::string last) : path_(std::move(path)), time_(time), last_(std::move(last)) {}
  std::string path_;
  const TimeSource& time_;
  std::mutex mu_;
  std::string last_;  // hash of the last line
};

struct AuditVerdict {
  bool ok = true;
  size_t lines = 0;
  size_t first_bad_line = 0;  // 1-based, when !ok
  std::string why;
  std::string last_hash;
};

// Checks the whole chain of a log file.
AuditVerdict verifyAuditLog(const std::string& path);

}  // namespace greenlight::controller
