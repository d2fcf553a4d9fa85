#include "greenlight/probes/token_cache.h"

#include "greenlight/common/crypto.h"

namespace greenlight::probes {

std::string TokenCache::keyOf(const OAuth2Settings& s) {
  std::string key = s.token_url + '\n' + s.client_id + '\n';
  for (const auto& scope : s.scopes) key += scope + ' ';
  // The secret is part of the identity (a rotated secret must fetch a new token) but is only
  // kept as a digest here.
  auto d = sha256(s.client_secret);
  return key + '\n' + toHex(d.data(), d.size());
}

std::optional<std::string> TokenCache::get(const std::string& key, MonoTime now) const {
  auto it = entries_.find(key);
  if (it == entries_.end() || now >= it->second.refresh_at) return std::nullopt;
  return it->second.token;
}

void TokenCache::put(const std::string& key, std::string token, MonoTime refresh_at) {
  entries_[key] = Entry{std::move(token), refresh_at};
}

}  // namespace greenlight::probes
