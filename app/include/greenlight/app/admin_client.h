// The CLI's side of the admin API: `greenlight alerts` and `greenlight silence add|list|expire`
// talk to a running `greenlight run` over HTTP(S) with a bearer token from the environment
// (GREENLIGHT_TOKEN) or a file, never from the command line (it would show in `ps`).
#pragma once

#include <string>
#include <vector>

namespace greenlight::app {

struct ClientOptions {
  std::string url = "http://127.0.0.1:9470";  // GREENLIGHT_URL overrides the default
  std::string token_file;                     // else GREENLIGHT_TOKEN
  std::string ca_file;
  bool json = false;  // print the API's JSON instead of a table
};

int alertsCommand(const ClientOptions& o);
int silenceAddCommand(const ClientOptions& o, const std::vector<std::string>& matchers, const std::string& duration,
                      const std::string& comment);
int silenceListCommand(const ClientOptions& o);
int silenceExpireCommand(const ClientOptions& o, const std::string& id);
// `greenlight rollout ACTION SERVICE`: start (with a release), promote, pause, resume, abort,
// rollback; `status` with an empty service lists every service.
int rolloutCommand(const ClientOptions& o, const std::string& action, const std::string& service,
                   const std::string& release, const std::string& reason);

}  // namespace greenlight::app
