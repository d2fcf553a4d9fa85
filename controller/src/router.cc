#include "greenlight/controller/router.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

namespace greenlight::controller {
namespace {

// Connects a stream socket to a Unix path or host:port; -1 and `why` on failure.
int connectTo(const std::string& where, std::string* why) {
  int fd = -1;
  if (!where.empty() && where[0] == '/') {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (where.size() >= sizeof a.sun_path) {
      *why = "socket path too long";
      return -1;
    }
    std::memcpy(a.sun_path, where.c_str(), where.size() + 1);
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  } else {
    const auto colon = where.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    if (colon == std::string::npos || inet_pton(AF_INET, where.substr(0, colon).c_str(), &a.sin_addr) != 1) {
      *why = "expected a socket path or IPv4 host:port, got \"" + where + "\"";
      return -1;
    }
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(where.substr(colon + 1))));
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  }
  *why = std::strerror(errno);
  if (fd >= 0) ::close(fd);
  return -1;
}

}  // namespace

StatusOr<std::string> runtimeCommand(const std::string& where, const std::string& line, Duration timeout) {
  std::string why;
  const int fd = connectTo(where, &why);
  if (fd < 0) return Unavailable("runtime API " + where + ": " + why);
  const std::string out = line + "\n";
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return Unavailable("runtime API " + where + ": write failed");
    }
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[8192];
  const int ms = static_cast<int>(toMillis(timeout));
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, ms);
    if (r <= 0) {
      ::close(fd);
      return Unavailable("runtime API " + where + ": no answer within " + std::to_string(ms) + " ms");
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
    if (answer.size() > (8 << 20)) break;
  }
  ::close(fd);
  return answer;
}

namespace {

class BuiltinRouter final : public Router {
 public:
  BuiltinRouter(BuiltinRouterSpec spec, Duration timeout) : spec_(std::move(spec)), timeout_(timeout) {}

  Status setWeights(Color candidate, int weight) override {
    const int blue = candidate == Color::kBlue ? weight : 100 - weight;
    auto r = runtimeCommand(spec_.socket,
                            "set weight " + spec_.service + " blue " + std::to_string(blue) + " green " + std::to_string(100 - blue),
                            timeout_);
    if (!r.ok()) return r.status();
    if (r.value().rfind("ok", 0) != 0) return Unavailable("greenlight proxy refused: " + r.value());
    return Status::Ok();
  }

  StatusOr<std::array<ColorCounters, 2>> counters() override { return stats(false); }
  StatusOr<std::array<ColorCounters, 2>> mirroredCounters() override { return stats(true); }

  Status setMirror(int percent) override {
    auto r = runtimeCommand(spec_.socket, "set mirror " + spec_.service + " " + std::to_string(percent), timeout_);
    if (!r.ok()) return r.status();
    if (r.value().rfind("ok", 0) != 0) return Unavailable("greenlight proxy refused: " + r.value());
    return Status::Ok();
  }

  std::string describe() const override { return "greenlight proxy at " + spec_.socket + " (" + spec_.service + ")"; }

 private:
  // Each colour's answers from `show stats`: its own, or (mirrored) its answers to copies.
  StatusOr<std::array<ColorCounters, 2>> stats(bool mirrored) {
    auto r = runtimeCommand(spec_.socket, "show stats", timeout_);
    if (!r.ok()) return r.status();
    try {
      const auto j = nlohmann::json::parse(r.value()).at(spec_.service);
      std::array<ColorCounters, 2> out;
      for (int c = 0; c < 2; ++c) {
        const auto& own = j.at(c == 0 ? "blue" : "green");
        const auto& cj = mirrored ? own.at("mirrored") : own;
        for (int k = 1; k <= 5; ++k) out[c].by_class[k] = cj.at(std::to_string(k) + "xx").get<uint64_t>();
        if (cj.contains("latency")) {
          out[c].latency_le = cj.at("latency").at("le").get<std::vector<double>>();
          out[c].latency_cumulative = cj.at("latency").at("cumulative").get<std::vector<uint64_t>>();
          if (out[c].latency_cumulative.size() != out[c].latency_le.size() + 1) {
            return Unavailable("greenlight proxy stats for " + spec_.service + ": latency histogram of the wrong shape");
          }
        }
      }
      return out;
    } catch (const std::exception& e) {
      return Unavailable("greenlight proxy stats for " + spec_.service + ": " + e.what());
    }
  }

  BuiltinRouterSpec spec_;
  Duration timeout_;
};

class HaproxyRouter final : public Router {
 public:
  HaproxyRouter(HaproxyRouterSpec spec, Duration timeout) : spec_(std::move(spec)), timeout_(timeout) {}
  const std::string& where() const { return spec_.socket.empty() ? spec_.address : spec_.socket; }

  Status setWeights(Color candidate, int weight) override {
    // Raise one side and lower the other in ONE line: never a moment with no server.
    std::string line;
    // The side that gets more traffic first: HAProxy applies the commands in order, and lowering
    // one side before raising the other leaves a moment with no server (503s).
    const Color first = weight >= 50 ? candidate : other(candidate);
    for (Color c : {first, other(first)}) {
      const int w = c == candidate ? weight : 100 - weight;
      for (const auto& server : spec_.servers[colorName(c)]) {
        line += (line.empty() ? "" : "; ") + std::string("set server ") + spec_.backend + "/" + server + " weight " +
                std::to_string(w);
      }
    }
    auto r = runtimeCommand(where(), line, timeout_);
    if (!r.ok()) return r.status();
    // HAProxy answers nothing on success, or one message per failed command.
    std::string answer = r.value();
    answer.erase(std::remove_if(answer.begin(), answer.end(), [](char ch) { return ch == '\n' || ch == '\r' || ch == ' '; }),
                 answer.end());
    if (!answer.empty()) return Unavailable("HAProxy refused \"" + line + "\": " + r.value());
    return Status::Ok();
  }

  StatusOr<std::array<ColorCounters, 2>> counters() override {
    auto r = runtimeCommand(where(), "show stat", timeout_);
    if (!r.ok()) return r.status();
    std::istringstream in(r.value());
    std::string header;
    std::getline(in, header);
    if (header.rfind("# ", 0) != 0) return Unavailable("HAProxy show stat: unexpected answer");
    std::vector<std::string> cols;
    {
      std::istringstream h(header.substr(2));
      std::string c;
      while (std::getline(h, c, ',')) cols.push_back(c);
    }
    auto col = [&](const std::string& name) {
      return static_cast<size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
    };
    const size_t px = col("pxname"), sv = col("svname");
    std::array<size_t, 6> hrsp{};
    for (int k = 1; k <= 5; ++k) hrsp[k] = col("hrsp_" + std::to_string(k) + "xx");
    std::array<ColorCounters, 2> out;
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::istringstream l(line);
      std::string x;
      while (std::getline(l, x, ',')) f.push_back(x);
      if (f.size() <= std::max(px, sv) || f[px] != spec_.backend) continue;
      for (int c = 0; c < 2; ++c) {
        const auto& names = spec_.servers[c == 0 ? "blue" : "green"];
        if (std::find(names.begin(), names.end(), f[sv]) == names.end()) continue;
        for (int k = 1; k <= 5; ++k) {
          if (hrsp[k] < f.size() && !f[hrsp[k]].empty()) out[c].by_class[k] += std::stoull(f[hrsp[k]]);
        }
      }
    }
    return out;
  }

  // HAProxy mirrors only through an SPOE agent of its own: not driven from here (the config
  // refuses strategy.mirror with this router).
  Status setMirror(int percent) override {
    if (percent == 0) return Status::Ok();
    return FailedPrecondition("HAProxy: mirroring needs router builtin");
  }
  StatusOr<std::array<ColorCounters, 2>> mirroredCounters() override {
    return FailedPrecondition("HAProxy: mirroring needs router builtin");
  }

  std::string describe() const override { return "HAProxy at " + where() + " (backend " + spec_.backend + ")"; }

 private:
  HaproxyRouterSpec spec_;
  Duration timeout_;
};

}  // namespace

std::unique_ptr<Router> makeBuiltinRouter(BuiltinRouterSpec spec, Duration timeout) {
  return std::make_unique<BuiltinRouter>(std::move(spec), timeout);
}
std::unique_ptr<Router> makeHaproxyRouter(HaproxyRouterSpec spec, Duration timeout) {
  return std::make_unique<HaproxyRouter>(std::move(spec), timeout);
}

}  // namespace greenlight::controller
