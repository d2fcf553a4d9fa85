// OAuth2 access tokens kept in memory (never on disk, never logged) until shortly before they
// expire, shared by every probe that uses the same client. Not thread-safe: loop thread only.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "greenlight/common/time_source.h"
#include "greenlight/probes/probe_spec.h"

namespace greenlight::probes {

class TokenCache {
 public:
  static std::string keyOf(const OAuth2Settings& s);
  std::optional<std::string> get(const std::string& key, MonoTime now) const;
  void put(const std::string& key, std::string token, MonoTime refresh_at);
  void invalidate(const std::string& key) { entries_.erase(key); }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string token;
    MonoTime refresh_at;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace greenlight::probes
