// The admin API of the rollout controller: GET /api/v1/rollouts[/SERVICE] (viewer) and
// POST /api/v1/rollouts/SERVICE/{start,promote,pause,resume,abort,rollback} (operator).
// Private to the app module.
#pragma once

#include <functional>

#include "greenlight/common/admin_server.h"
#include "greenlight/controller/controller.h"

namespace greenlight::app {

void registerRolloutRoutes(AdminServer& admin, std::function<controller::Controller*()> controller,
                           const TimeSource& time);

}  // namespace greenlight::app
