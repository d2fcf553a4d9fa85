#include "greenlight/proxy/runtime_command.h"

#include <charconv>
#include <sstream>
#include <vector>

namespace greenlight::proxy {
namespace {

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::optional<int> weightOf(std::string_view s) {
  int v = -1;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v < 0 || v > 100) return std::nullopt;
  return v;
}

CommandResult fail(std::string message) {
  CommandResult r;
  r.output = "error: " + message + "\n";
  return r;
}

// An accepted change: the next version of the table, and what changed (logged, answered).
CommandResult changed(RoutingTable next, std::string change) {
  ++next.version;
  CommandResult r;
  r.ok = true;
  r.output = "ok " + change + "\n";
  r.change = std::move(change);
  r.table = std::move(next);
  return r;
}

const char* kHelp =
    "set weight SERVICE blue N green M\n"
    "set endpoint SERVICE blue|green HOST:PORT state ready|drain|maint\n"
    "set mirror SERVICE PERCENT\n"
    "show routes\n"
    "show stats\n"
    "help\n";

}  // namespace

CommandResult runCommand(const RoutingTable& current, std::string_view line) {
  auto w = words(line);
  if (w.empty()) return fail("empty command (try \"help\")");
  if (w.size() == 1 && w[0] == "help") {
    CommandResult r;
    r.ok = true;
    r.output = kHelp;
    return r;
  }
  if (w.size() == 2 && w[0] == "show" && w[1] == "routes") {
    CommandResult r;
    r.ok = true;
    r.output = routesToJson(current) + "\n";
    return r;
  }
  if (w.size() == 2 && w[0] == "show" && w[1] == "stats") {
    CommandResult r;
    r.ok = true;
    r.wants_stats = true;
    return r;
  }
  if (w.size() >= 2 && w[0] == "set" && w[1] == "weight") {
    if (w.size() != 7) return fail("usage: set weight SERVICE blue N green M");
    auto it = current.services.find(std::string(w[2]));
    if (it == current.services.end()) return fail("no service \"" + std::string(w[2]) + "\"");
    std::optional<int> weights[2];
    for (size_t i = 3; i + 1 < w.size(); i += 2) {
      auto c = parseColor(w[i]);
      auto v = weightOf(w[i + 1]);
      if (!c) return fail("expected blue or green, got \"" + std::string(w[i]) + "\"");
      if (!v) return fail("weights are whole numbers from 0 to 100, got \"" + std::string(w[i + 1]) + "\"");
      weights[static_cast<int>(*c)] = v;
    }
    if (!weights[0] || !weights[1]) return fail("give both colours: set weight SERVICE blue N green M");
    if (*weights[0] + *weights[1] != 100) {
      return fail("weights must add up to 100, got " + std::to_string(*weights[0] + *weights[1]));
    }
    const ServiceRoutes& s = it->second;
    for (Color c : {Color::kBlue, Color::kGreen}) {
      if (weights[static_cast<int>(c)] > 0 && !hasReadyEndpoint(s, c)) {
        return fail(std::string(colorName(c)) + " has no ready endpoint: refusing to send traffic there");
      }
    }
    RoutingTable next = current;
    ServiceRoutes& ns = next.services[s.name];
    std::ostringstream change;
    change << "weights " << s.name << " blue " << s.weight[0] << "->" << *weights[0] << " green "
           << s.weight[1] << "->" << *weights[1];
    ns.weight = {*weights[0], *weights[1]};
    return changed(std::move(next), change.str());
  }
  if (w.size() >= 2 && w[0] == "set" && w[1] == "mirror") {
    if (w.size() != 4) return fail("usage: set mirror SERVICE PERCENT (0 turns mirroring off)");
    auto it = current.services.find(std::string(w[2]));
    if (it == current.services.end()) return fail("no service \"" + std::string(w[2]) + "\"");
    auto percent = weightOf(w[3]);
    if (!percent) return fail("the mirrored percentage is a whole number from 0 to 100, got \"" + std::string(w[3]) + "\"");
    RoutingTable next = current;
    ServiceRoutes& ns = next.services[it->first];
    const std::string change = "mirror " + it->first + " " + std::to_string(ns.mirror) + "->" + std::to_string(*percent);
    ns.mirror = *percent;
    return changed(std::move(next), change);
  }
  if (w.size() >= 2 && w[0] == "set" && w[1] == "endpoint") {
    if (w.size() != 7 || w[5] != "state") {
      return fail("usage: set endpoint SERVICE blue|green HOST:PORT state ready|drain|maint");
    }
    auto it = current.services.find(std::string(w[2]));
    if (it == current.services.end()) return fail("no service \"" + std::string(w[2]) + "\"");
    auto c = parseColor(w[3]);
    if (!c) return fail("expected blue or green, got \"" + std::string(w[3]) + "\"");
    auto st = parseEndpointState(w[6]);
    if (!st) return fail("expected ready, drain or maint, got \"" + std::string(w[6]) + "\"");
    RoutingTable next = current;
    ServiceRoutes& ns = next.services[it->first];
    Endpoint* target = nullptr;
    for (auto& e : ns.endpoints[static_cast<int>(*c)]) {
      if (e.address == w[4]) target = &e;
    }
    if (!target) return fail("no " + std::string(w[3]) + " endpoint " + std::string(w[4]) + " in " + it->first);
    std::string change = "endpoint " + it->first + " " + std::string(w[3]) + " " + target->address +
                         " state " + endpointStateName(target->state) + "->" + endpointStateName(*st);
    target->state = *st;
    if (ns.weight[static_cast<int>(*c)] > 0 && !hasReadyEndpoint(ns, *c)) {
      return fail("that would leave " + std::string(w[3]) + " (weight " +
                  std::to_string(ns.weight[static_cast<int>(*c)]) + ") with no ready endpoint");
    }
    return changed(std::move(next), change);
  }
  return fail("unknown command \"" + std::string(line.substr(0, 80)) + "\" (try \"help\")");
}

}  // namespace greenlight::proxy
