// libFuzzer target: the runtime API's command language. Whatever it accepts leaves a valid table.
#include <cstdint>
#include <cstdlib>

#include "greenlight/proxy/runtime_command.h"

using namespace greenlight::proxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const RoutingTable table = [] {
    RoutingTable t;
    ServiceRoutes s;
    s.name = "vehicles";
    s.endpoints[0] = {Endpoint{"127.0.0.1:1", "127.0.0.1", 1, EndpointState::kReady}};
    s.endpoints[1] = {Endpoint{"127.0.0.1:2", "127.0.0.1", 2, EndpointState::kReady}};
    t.services["vehicles"] = s;
    return t;
  }();
  auto r = runCommand(table, std::string_view(reinterpret_cast<const char*>(data), size));
  if (r.table) {
    for (const auto& [name, s] : r.table->services) {
      if (s.weight[0] < 0 || s.weight[1] < 0 || s.weight[0] + s.weight[1] != 100) std::abort();
      for (int c = 0; c < 2; ++c) {
        if (s.weight[c] > 0 && !hasReadyEndpoint(s, static_cast<Color>(c))) std::abort();
      }
    }
  }
  return 0;
}
