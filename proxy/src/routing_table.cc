#include "greenlight/proxy/routing_table.h"

#include <nlohmann/json.hpp>

namespace greenlight::proxy {

const char* colorName(Color c) { return c == Color::kBlue ? "blue" : "green"; }

std::optional<Color> parseColor(std::string_view s) {
  if (s == "blue") return Color::kBlue;
  if (s == "green") return Color::kGreen;
  return std::nullopt;
}

const char* endpointStateName(EndpointState s) {
  switch (s) {
    case EndpointState::kReady: return "ready";
    case EndpointState::kDrain: return "drain";
    case EndpointState::kMaint: return "maint";
  }
  return "ready";
}

std::optional<EndpointState> parseEndpointState(std::string_view s) {
  if (s == "ready") return EndpointState::kReady;
  if (s == "drain") return EndpointState::kDrain;
  if (s == "maint") return EndpointState::kMaint;
  return std::nullopt;
}

bool hasReadyEndpoint(const ServiceRoutes& s, Color c) {
  for (const auto& e : s.endpoints[static_cast<int>(c)]) {
    if (e.state == EndpointState::kReady) return true;
  }
  return false;
}

std::optional<Color> pickColor(const ServiceRoutes& s, double u, std::optional<Color> preview) {
  if (preview && hasReadyEndpoint(s, *preview)) return preview;
  const int blue = s.weight[0], green = s.weight[1];
  if (blue + green <= 0) return std::nullopt;
  Color c = (u * (blue + green) < blue) ? Color::kBlue : Color::kGreen;
  if (s.weight[static_cast<int>(c)] > 0 && hasReadyEndpoint(s, c)) return c;
  return std::nullopt;  // the weighted colour cannot serve: never silently send to the other
}

std::optional<Color> mirrorColor(const ServiceRoutes& s, Color live, double u) {
  const Color idle = live == Color::kBlue ? Color::kGreen : Color::kBlue;
  if (s.mirror <= 0 || s.weight[static_cast<int>(idle)] != 0 || u * 100 >= s.mirror) return std::nullopt;
  if (!hasReadyEndpoint(s, idle)) return std::nullopt;
  return idle;
}

std::optional<std::string_view> cookieValue(std::string_view header, std::string_view name) {
  size_t i = 0;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ';')) ++i;
    size_t end = header.find(';', i);
    if (end == std::string_view::npos) end = header.size();
    std::string_view pair = header.substr(i, end - i);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    i = end;
  }
  return std::nullopt;
}

std::optional<Color> previewFromCookie(std::string_view header, std::string_view name) {
  const auto value = cookieValue(header, name);
  return value ? parseColor(*value) : std::nullopt;
}

double affinityPoint(std::string_view key) {
  // FNV-1a over the bytes, then SplitMix64's finaliser: FNV alone leaves keys that differ in
  // their last byte (tokens, addresses) close together in the high bits the point is made of.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

std::string routesToJson(const RoutingTable& t) {
  nlohmann::json services = nlohmann::json::object();
  for (const auto& [name, s] : t.services) {
    nlohmann::json j;
    j["weights"] = {{"blue", s.weight[0]}, {"green", s.weight[1]}};
    j["mirror"] = s.mirror;
    for (Color c : {Color::kBlue, Color::kGreen}) {
      nlohmann::json eps = nlohmann::json::array();
      for (const auto& e : s.endpoints[static_cast<int>(c)]) {
        eps.push_back({{"address", e.address}, {"state", endpointStateName(e.state)}});
      }
      j["endpoints"][colorName(c)] = eps;
    }
    services[name] = j;
  }
  return nlohmann::json{{"version", t.version}, {"services", services}}.dump(2);
}

Status applyPersisted(RoutingTable& t, const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("services") || !j["services"].is_object()) {
    return InvalidArgument("state file is not a Greenlight routing table");
  }
  try {
    if (j.contains("version")) t.version = j["version"].get<uint64_t>();
    for (const auto& [name, sj] : j["services"].items()) {
      auto it = t.services.find(name);
      if (it == t.services.end()) continue;
      ServiceRoutes& s = it->second;
      const int blue = sj.at("weights").at("blue").get<int>(), green = sj.at("weights").at("green").get<int>();
      if (blue < 0 || green < 0 || blue + green != 100) {
        return InvalidArgument("state file: weights of " + name + " do not add up to 100");
      }
      s.weight = {blue, green};
      if (sj.contains("mirror")) {  // files written before mirroring have none: the config's stays
        const int mirror = sj["mirror"].get<int>();
        if (mirror < 0 || mirror > 100) return InvalidArgument("state file: mirror of " + name + " is not 0 to 100");
        s.mirror = mirror;
      }
      if (!sj.contains("endpoints")) continue;
      for (Color c : {Color::kBlue, Color::kGreen}) {
        if (!sj["endpoints"].contains(colorName(c))) continue;
        for (const auto& ej : sj["endpoints"][colorName(c)]) {
          for (auto& e : s.endpoints[static_cast<int>(c)]) {
            if (e.address != ej.at("address").get<std::string>()) continue;
            if (auto st = parseEndpointState(ej.at("state").get<std::string>())) e.state = *st;
          }
        }
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("state file: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace greenlight::proxy
