// Helpers for tests: waiting on a condition with a deadline (never a fixed sleep), temp dirs,
// child processes, a scripted Transport for the probe engine's unit tests.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "greenlight/common/config_reader.h"
#include "greenlight/probes/probe_result.h"
#include "greenlight/probes/probe_spec.h"
#include "greenlight/probes/token_cache.h"
#include "greenlight/probes/transport.h"

namespace greenlight::testing {

// Polls `condition` until it holds or `timeout` passes. Returns whether it held.
bool waitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(15));

// Runs `work` (a stop, say) on a thread of its own and says whether it returned within
// `timeout`; waits for it to return either way.
bool returnsWithin(const std::function<void()>& work, std::chrono::milliseconds timeout);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// A port that was free a moment ago (for servers that cannot report the port they bound).
int freePort();

// A child process; killed (SIGKILL) and reaped on destruction if still running.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_file,
               const std::map<std::string, std::string>& extra_env = {});
  ~ChildProcess();
  int pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit up to timeout; returns the exit code, or -1 if still running / killed.
  int wait(std::chrono::milliseconds timeout);

 private:
  int pid_ = -1;
  int status_ = -1;
  bool exited_ = false;
};

std::string readFile(const std::string& path);

// A blocking TCP connection to 127.0.0.1:port whose reads time out after 5 s; -1 (errno says
// why) if it fails.
int connectLoopback(int port);

// True if a TLS client limited to protocol versions up to `max_version` (e.g. TLS1_1_VERSION)
// completes a handshake with 127.0.0.1:port (no certificate check: only the protocol matters).
bool tlsHandshakes(int port, int max_version);

// An environment of just these variables, for config tests.
EnvLookup fakeEnv(std::map<std::string, std::string> vars);

// Runs one probe to completion on the real curl transport with a private event loop; the
// token cache may be shared between calls.
probes::ProbeResult runProbeOnce(const probes::ProbeSpec& spec, probes::TokenCache* tokens = nullptr);

// Plain HTTP GET/POST to 127.0.0.1 (test servers); returns status (or -1) and body.
struct HttpReply {
  int status = -1;
  std::string body;
};
HttpReply httpGet(int port, const std::string& path, const std::string& bearer = "");
HttpReply httpPost(int port, const std::string& path, const std::string& body,
                   const std::string& bearer = "");
HttpReply httpDelete(int port, const std::string& path, const std::string& bearer = "");

// The median time of `n` GETs of `path` on one kept-alive connection to 127.0.0.1:port (the
// cpp-httplib client, as the demo's traffic uses); a failed request counts as an hour. For
// catching a server whose response waits for the client's delayed ACK (40 ms each): not a
// speed measurement.
std::chrono::microseconds keepAliveMedian(int port, const std::string& path, int n, bool tls = false);

// Records every request; a test completes or fails them by hand, in any order.
class ScriptedTransport final : public probes::Transport {
 public:
  struct Pending {
    probes::RequestId id;
    probes::TransportRequest request;
    std::function<void(probes::TransportResult)> done;
  };
  probes::RequestId start(probes::TransportRequest request,
                          std::function<void(probes::TransportResult)> done) override;
  void cancel(probes::RequestId id) override;
  // Completes the oldest pending request.
  void completeNext(probes::TransportResult result);
  size_t pendingCount() const { return pending_.size(); }
  const probes::TransportRequest& pendingRequest(size_t i = 0) const { return pending_.at(i).request; }
  const std::vector<probes::TransportRequest>& history() const { return history_; }
  const std::vector<probes::RequestId>& cancelled() const { return cancelled_; }

  static probes::TransportResult ok(int status, std::string body = "",
                                    std::chrono::milliseconds took = std::chrono::milliseconds(10));
  static probes::TransportResult failed(probes::FailureReason reason, std::string message);

 private:
  probes::RequestId next_ = 1;
  std::vector<Pending> pending_;
  std::vector<probes::TransportRequest> history_;
  std::vector<probes::RequestId> cancelled_;
};

}  // namespace greenlight::testing
