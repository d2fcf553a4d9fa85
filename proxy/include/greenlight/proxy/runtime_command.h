// The runtime API's command language, modelled on HAProxy's:
//   set weight SERVICE blue N green M          (atomic: both in one change; N + M = 100)
//   set endpoint SERVICE COLOR HOST:PORT state ready|drain|maint
//   show routes                                (JSON)
//   show stats                                 (JSON, from the proxy)
//   help
// Pure: a command and the current table give an answer and, for a change, the new table.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "greenlight/proxy/routing_table.h"

namespace greenlight::proxy {

struct CommandResult {
  bool ok = false;
  std::string output;                 // what the caller sees (JSON for show, text otherwise)
  std::optional<RoutingTable> table;  // set when the command changed the routes
  std::string change;                 // "weights vehicles blue 100->90 green 0->10", for the log
  bool wants_stats = false;           // "show stats": the caller fills in the output
};

CommandResult runCommand(const RoutingTable& current, std::string_view line);

}  // namespace greenlight::proxy
