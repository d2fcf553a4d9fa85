// The built-in status page at "/" and its assets under "/status/". The page itself needs no
// token (it holds no data); everything it shows comes from the JSON API, which checks roles.
#pragma once

#include "greenlight/common/admin_server.h"

namespace greenlight::app {

void registerStatusRoutes(AdminServer& admin);

}  // namespace greenlight::app
