// Crash points for tests of crash safety: `GREENLIGHT_FAILPOINT=<name>` in the environment makes
// the process exit (status 86, no cleanup, as a kill -9 would leave it) the first time the code
// passes `failpoint("<name>")`. Unset (always, outside such tests) it costs one branch on a
// value read once. Each name is documented where its crash window is (docs/alerting.md).
#pragma once

#include <string_view>

namespace greenlight {

void failpoint(std::string_view name);

}  // namespace greenlight
