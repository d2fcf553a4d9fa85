// The admin API of alerting: GET /api/v1/alerts, GET/POST /api/v1/silences,
// DELETE /api/v1/silences/{id}. Private to the app module.
#pragma once

#include <functional>
#include <memory>

#include "greenlight/alerts/alert_engine.h"
#include "greenlight/common/admin_server.h"

namespace greenlight::app {

using AlertEngineRef = std::function<std::shared_ptr<alerts::AlertEngine>()>;

void registerAlertRoutes(AdminServer& admin, AlertEngineRef engine, const TimeSource& time);

}  // namespace greenlight::app
