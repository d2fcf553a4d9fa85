#include "command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

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
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
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
