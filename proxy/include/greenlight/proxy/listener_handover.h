// Hands the listening sockets of a running `greenlight proxy` to its replacement, so a restart or
// a config change drops no connection attempt (as HAProxy's `expose-fd listeners` + `-x`): the
// new process asks over the runtime Unix socket ("takeover"), receives the sockets with
// SCM_RIGHTS, and starts accepting on them while the old one stops accepting, finishes what it
// has in flight, and exits. Connections waiting in the kernel's accept queue belong to the
// socket, not the process, so none is lost. Only the runtime socket's owner can ask (0600).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "greenlight/common/status.h"

namespace greenlight::proxy {

// Sends `listeners` (service name, listening fd) over the connected Unix socket `unix_fd`.
Status sendListeners(int unix_fd, const std::vector<std::pair<std::string, int>>& listeners);

// Connects to the running proxy's runtime socket, asks for its listeners and returns them by
// service (the fds are this process's own from then on).
StatusOr<std::map<std::string, int>> receiveListeners(const std::string& runtime_socket);

}  // namespace greenlight::proxy
