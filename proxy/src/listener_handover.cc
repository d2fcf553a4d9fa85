#include "greenlight/proxy/listener_handover.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

namespace greenlight::proxy {
namespace {

constexpr size_t kMaxListeners = 64;

std::string errnoText() { return std::strerror(errno); }

}  // namespace

Status sendListeners(int unix_fd, const std::vector<std::pair<std::string, int>>& listeners) {
  if (listeners.empty() || listeners.size() > kMaxListeners) return InvalidArgument("takeover: 1 to 64 listeners");
  nlohmann::json names = nlohmann::json::array();
  std::vector<int> fds;
  for (const auto& [service, fd] : listeners) {
    names.push_back(service);
    fds.push_back(fd);
  }
  std::string payload = names.dump();
  iovec iov{payload.data(), payload.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()), 0);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  if (::sendmsg(unix_fd, &msg, MSG_NOSIGNAL) < 0) return Unavailable("takeover: sending listeners: " + errnoText());
  return Status::Ok();
}

StatusOr<std::map<std::string, int>> receiveListeners(const std::string& runtime_socket) {
  sockaddr_un addr{};
  if (runtime_socket.empty() || runtime_socket.size() >= sizeof addr.sun_path) {
    return InvalidArgument("takeover needs proxy.runtime_api.socket: the running proxy hands its listeners over there");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, runtime_socket.c_str(), runtime_socket.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable("takeover: socket: " + errnoText());
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = errnoText();
    ::close(fd);
    return Unavailable("takeover: cannot reach the running proxy at " + runtime_socket + ": " + why);
  }
  const std::string ask = "takeover\n";
  if (::send(fd, ask.data(), ask.size(), MSG_NOSIGNAL) != ssize_t(ask.size())) {
    ::close(fd);
    return Unavailable("takeover: cannot ask the running proxy: " + errnoText());
  }
  std::string payload(16 << 10, '\0');
  iovec iov{payload.data(), payload.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxListeners), 0);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  ::close(fd);
  if (n <= 0) return Unavailable("takeover: the running proxy sent no listeners (is it an older version, or busy?)");
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    fds.resize(count);
    std::memcpy(fds.data(), CMSG_DATA(c), sizeof(int) * count);
  }
  auto names = nlohmann::json::parse(payload.substr(0, size_t(n)), nullptr, false);
  if (names.is_discarded() || !names.is_array() || names.size() != fds.size() || (msg.msg_flags & MSG_CTRUNC)) {
    for (int f : fds) ::close(f);
    return Unavailable("takeover: the running proxy's answer was malformed: " + payload.substr(0, std::min<size_t>(size_t(n), 200)));
  }
  std::map<std::string, int> out;
  for (size_t i = 0; i < fds.size(); ++i) out[names[i].is_string() ? names[i].get<std::string>() : ""] = fds[i];
  return out;
}

}  // namespace greenlight::proxy
