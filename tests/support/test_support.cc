#include "support/test_support.h"

#include <atomic>

#include "greenlight/common/random.h"
#include "greenlight/common/scheduler.h"
#include "greenlight/probes/curl_transport.h"
#include "greenlight/probes/probe_run.h"

#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace greenlight::testing {

bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

bool returnsWithin(const std::function<void()>& work, std::chrono::milliseconds timeout) {
  std::atomic<bool> returned{false};
  std::thread worker([&] {
    work();
    returned = true;
  });
  const bool in_time = waitUntil([&] { return returned.load(); }, timeout);
  worker.join();
  return in_time;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "greenlight-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  std::ofstream(p) << content;
  return p;
}

int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_file,
                           const std::map<std::string, std::string>& extra_env) {
  pid_ = fork();
  if (pid_ == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    for (const auto& [k, v] : extra_env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

bool ChildProcess::running() {
  if (exited_) return false;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    exited_ = true;
    status_ = st;
    return false;
  }
  return true;
}

void ChildProcess::signal(int sig) {
  if (!exited_) kill(pid_, sig);
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  waitUntil([this] { return !running(); }, timeout);
  if (!exited_) return -1;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

EnvLookup fakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

probes::ProbeResult runProbeOnce(const probes::ProbeSpec& spec, probes::TokenCache* tokens) {
  RealTimeSource time;
  DefaultRandom random(1);
  probes::TokenCache own_tokens;
  probes::CurlTransport transport;
  TimerQueue timers(time);
  std::optional<probes::ProbeResult> result;
  auto run = probes::ProbeRun::start(
      std::make_shared<const probes::ProbeSpec>(spec),
      probes::RunContext{transport, timers, random, tokens ? *tokens : own_tokens},
      [&](probes::ProbeResult r) { result = std::move(r); });
  const MonoTime give_up = time.monotonicNow() + spec.timeout + std::chrono::seconds(5);
  while (!result && time.monotonicNow() < give_up) {
    timers.runDue();
    transport.perform();
    if (!result) transport.poll(std::chrono::milliseconds(5));
  }
  if (!result) throw std::runtime_error("probe " + spec.name + " did not finish");
  return std::move(*result);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::chrono::microseconds keepAliveMedian(int port, const std::string& path, int n, bool tls) {
  std::unique_ptr<httplib::ClientImpl> client;
  if (tls) {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
    c->enable_server_certificate_verification(false);  // only the timing matters here
    client = std::move(c);
  } else {
    client = std::make_unique<httplib::ClientImpl>("127.0.0.1", port);
  }
  client->set_keep_alive(true);
  client->set_read_timeout(5, 0);
  std::vector<std::chrono::microseconds> took;
  for (int i = 0; i < n; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto res = client->Get(path);
    took.push_back(res ? std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
                       : std::chrono::microseconds(std::chrono::hours(1)));
  }
  std::sort(took.begin(), took.end());
  return took[took.size() / 2];
}

HttpReply httpGet(int port, const std::string& path, const std::string& bearer) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  httplib::Headers h;
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  auto res = c.Get(path.c_str(), h);
  if (!res) return {};
  return {res->status, res->body};
}

HttpReply httpPost(int port, const std::string& path, const std::string& body,
                   const std::string& bearer) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  httplib::Headers h;
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  auto res = c.Post(path.c_str(), h, body, "application/json");
  if (!res) return {};
  return {res->status, res->body};
}

HttpReply httpDelete(int port, const std::string& path, const std::string& bearer) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  httplib::Headers h;
  if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
  auto res = c.Delete(path.c_str(), h);
  if (!res) return {};
  return {res->status, res->body};
}

probes::RequestId ScriptedTransport::start(probes::TransportRequest request,
                                           std::function<void(probes::TransportResult)> done) {
  history_.push_back(request);
  pending_.push_back({next_, std::move(request), std::move(done)});
  return next_++;
}

void ScriptedTransport::cancel(probes::RequestId id) {
  cancelled_.push_back(id);
  std::erase_if(pending_, [id](const Pending& p) { return p.id == id; });
}

void ScriptedTransport::completeNext(probes::TransportResult result) {
  if (pending_.empty()) throw std::logic_error("no pending request");
  Pending p = std::move(pending_.front());
  pending_.erase(pending_.begin());
  p.done(std::move(result));
}

probes::TransportResult ScriptedTransport::ok(int status, std::string body,
                                              std::chrono::milliseconds took) {
  probes::TransportResult r;
  r.connected = true;
  r.status = status;
  r.body = std::move(body);
  r.body_length = static_cast<int64_t>(r.body.size());
  r.total = took;
  r.http_version = 1.1;
  r.headers = {{"content-type", "application/json"}};
  return r;
}

probes::TransportResult ScriptedTransport::failed(probes::FailureReason reason,
                                                  std::string message) {
  probes::TransportResult r;
  r.error = reason;
  r.error_message = std::move(message);
  return r;
}

int connectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int why = errno;
    ::close(fd);
    errno = why;  // the caller may tell refused (ECONNREFUSED) from other failures
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

bool tlsHandshakes(int port, int max_version) {
  const int fd = connectLoopback(port);
  if (fd < 0) return false;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
  SSL_CTX_set_max_proto_version(ctx, max_version);
  SSL_CTX_set_security_level(ctx, 0);  // let the client offer old protocols at all
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  const bool ok = SSL_connect(ssl) == 1;
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return ok;
}

}  // namespace greenlight::testing
