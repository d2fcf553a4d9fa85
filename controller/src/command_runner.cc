#include "command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <vector>

extern char** environ;

namespace greenlight::controller {

std::string expandCommand(std::string tmpl, const std::map<std::string, std::string>& values) {
  for (const auto& [k, v] : values) {
    const std::string key = "{" + k + "}";
    for (size_t at = tmpl.find(key); at != std::string::npos; at = tmpl.find(key, at + v.size())) tmpl.replace(at, key.size(), v);
  }
  return tmpl;
}

CommandResult runCommand(const std::string& command, const std::map<std::string, std::string>& env, Duration timeout) {
  CommandResult r;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    r.output = "cannot create a pipe";
    return r;
  }
  // Everything the child needs is built before fork(): between fork and exec only
  // async-signal-safe calls are allowed (an allocation there can deadlock on a lock another
  // thread held at the fork).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (!env.count(key)) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& kv : env_strings) envp.push_back(kv.data());
  envp.push_back(nullptr);
  std::string cmd = command;
  char sh[] = "/bin/sh", dash_c[] = "-c";
  char* argv[] = {sh, dash_c, cmd.data(), nullptr};
  sigset_t none;
  sigemptyset(&none);
  const pid_t pid = ::fork();
  if (pid < 0) {
    r.output = "cannot fork";
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return r;
  }
  if (pid == 0) {
    ::setpgid(0, 0);  // its own group: a timeout kills everything it started
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve("/bin/sh", argv, envp.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  // The deadline is counted down in poll() slices: no clock read needed here.
  int64_t left_ms = toMillis(timeout);
  char buf[4096];
  for (;;) {
    pollfd p{pipefd[0], POLLIN, 0};
    const int slice = static_cast<int>(std::min<int64_t>(left_ms, 100));
    const int n = ::poll(&p, 1, slice);
    if (n == 0) {
      left_ms -= slice;
      if (left_ms <= 0) {
        r.timed_out = true;
        ::kill(-pid, SIGKILL);
        break;
      }
      continue;
    }
    const ssize_t got = ::read(pipefd[0], buf, sizeof buf);
    if (got <= 0) break;
    r.output.append(buf, static_cast<size_t>(got));
    if (r.output.size() > (16 << 10)) r.output.erase(0, r.output.size() - (16 << 10));
  }
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!r.timed_out && WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    r.ok = r.exit_code == 0;
  }
  return r;
}

}  // namespace greenlight::controller
