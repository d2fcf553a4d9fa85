// Runs a release's start/stop command (`/bin/sh -c`) with a timeout; on timeout the whole
// process group is killed. Output is captured (bounded) for the log. Private to the controller.
#pragma once

#include <map>
#include <string>

#include "greenlight/common/time_source.h"

namespace greenlight::controller {

struct CommandResult {
  bool ok = false;       // exited 0 within the timeout
  int exit_code = -1;
  bool timed_out = false;
  std::string output;    // stdout + stderr, at most 16 KiB (the tail)
};

CommandResult runCommand(const std::string& command, const std::map<std::string, std::string>& env, Duration timeout);

// {service}, {color}, {release}, {port} in a command template.
std::string expandCommand(std::string tmpl, const std::map<std::string, std::string>& values);

}  // namespace greenlight::controller
