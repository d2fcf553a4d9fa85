// The JSON view of probe state for the admin API and the CLI. Pure.
#pragma once

#include <string>
#include <vector>

#include "greenlight/probes/probe_manager.h"

namespace greenlight::probes {

std::string probesToJson(const std::vector<ProbeStatus>& probes);

}  // namespace greenlight::probes
