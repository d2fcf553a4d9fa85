// The data plane's routing table: per service, the endpoints of each colour and the weight of
// each colour. Immutable once built; a change makes a new table (RoutingStore swaps it in), so
// every request reads one consistent version without locks. Pure functions here; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "greenlight/common/status.h"

namespace greenlight::proxy {

enum class Color { kBlue = 0, kGreen = 1 };
const char* colorName(Color c);
std::optional<Color> parseColor(std::string_view s);

enum class EndpointState { kReady, kDrain, kMaint };
const char* endpointStateName(EndpointState s);
std::optional<EndpointState> parseEndpointState(std::string_view s);

struct Endpoint {
  std::string address;  // host:port as configured
  std::string host;
  uint16_t port = 0;
  EndpointState state = EndpointState::kReady;
  bool operator==(const Endpoint&) const = default;
};

// Colour affinity (services[].affinity): a request that carries the key (a header, a cookie or
// the client's address) is split by a stable hash of the key instead of at random, so the same
// key reaches the same colour while the weights stay, and as the new colour's weight grows the
// keys already on it stay there. Requests without the key are split at random as before.
enum class AffinityKey { kNone, kHeader, kCookie, kClientAddress };
struct Affinity {
  AffinityKey key = AffinityKey::kNone;
  std::string name;  // the header (lower-case) or cookie name
  bool operator==(const Affinity&) const = default;
};

struct ServiceRoutes {
  std::string name;
  std::array<int, 2> weight{100, 0};  // blue, green; 0-100, sum 100
  std::array<std::vector<Endpoint>, 2> endpoints;
  std::string preview_header;  // e.g. "x-greenlight-color" (lower-case); empty: none
  std::string preview_cookie;  // e.g. "greenlight-color"; empty: none
  Affinity affinity;
  // Traffic mirroring (services[].mirror, `set mirror`): this percentage of the requests to the
  // colour that takes traffic, GET and HEAD without a body only, is also sent to the colour at
  // weight 0 (a copy; its answer is measured and dropped). 0: off. Nothing is mirrored while
  // both colours have weight.
  int mirror = 0;
  bool operator==(const ServiceRoutes&) const = default;
};

struct RoutingTable {
  uint64_t version = 0;
  std::map<std::string, ServiceRoutes> services;
};

// Picks the colour of one request: the preview colour if given and it has a ready endpoint,
// otherwise by weight with `u` uniform in [0, 1). nullopt when no colour can serve.
std::optional<Color> pickColor(const ServiceRoutes& s, double u, std::optional<Color> preview);
bool hasReadyEndpoint(const ServiceRoutes& s, Color c);
// The colour a request to `live` is mirrored to: the other one, if the service mirrors, that one
// has weight 0 and a ready endpoint, and `live` is not it. `u` uniform in [0, 1) picks whether
// this request is one of the mirrored percentage.
std::optional<Color> mirrorColor(const ServiceRoutes& s, Color live, double u);
// The preview colour named by a header value or a Cookie header ("a=b; greenlight-color=green").
std::optional<Color> previewFromCookie(std::string_view cookie_header, std::string_view name);
// The value of the cookie `name` in a Cookie header; nullopt when it is not there.
std::optional<std::string_view> cookieValue(std::string_view cookie_header, std::string_view name);
// An affinity key's point in [0, 1), for pickColor's `u`: the same for the same key in every
// process and after every restart (a fixed hash, not std::hash), spread evenly over the range.
double affinityPoint(std::string_view key);

// Weights as they persist (state file) and show (runtime API).
std::string routesToJson(const RoutingTable& t);
// Applies persisted weights and endpoint states to a table built from config; services or
// endpoints the file names but the config no longer has are ignored.
Status applyPersisted(RoutingTable& t, const std::string& json);

}  // namespace greenlight::proxy
