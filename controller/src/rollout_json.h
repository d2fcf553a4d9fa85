// RolloutState <-> JSON, for the state file and the API. Private to the controller module.
#pragma once

#include <nlohmann/json.hpp>

#include "greenlight/common/status.h"
#include "greenlight/controller/rollout.h"

namespace greenlight::controller {

nlohmann::json stateToJson(const RolloutState& s);
StatusOr<RolloutState> stateFromJson(const nlohmann::json& j);

}  // namespace greenlight::controller
