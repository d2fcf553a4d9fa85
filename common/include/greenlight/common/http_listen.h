// The listening sockets of the cpp-httplib servers: the admin API, the simulator, test servers.
#pragma once

#include <httplib.h>
#include <sys/socket.h>

namespace greenlight {

// cpp-httplib 0.11 sets SO_REUSEPORT on every server socket, so a second server of the same
// user can bind the same port and silently take a share of its connections: a second greenlight
// started by mistake, or another server whose port-0 bind drew the number a configured port
// was about to take (seen in a test: half the demo's preview requests answered by its admin
// API). Only SO_REUSEADDR here: a restart still binds over connections in TIME_WAIT, and a
// second listener gets "address in use".
inline void listenExclusively(httplib::Server& server) {
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
}

}  // namespace greenlight
