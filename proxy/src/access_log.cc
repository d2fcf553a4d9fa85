#include "access_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>

#include "greenlight/common/time_format.h"

namespace greenlight::proxy {

namespace {

bool looksLikeId(std::string_view seg) {
  size_t digits = 0;
  for (char c : seg) digits += c >= '0' && c <= '9';
  return (!seg.empty() && digits == seg.size()) || (seg.size() >= 8 && digits >= 2);
}

int openForAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

}  // namespace

std::string redactPath(std::string_view target) {
  if (const size_t q = target.find_first_of("?#"); q != std::string_view::npos) target = target.substr(0, q);
  std::string out;
  out.reserve(target.size());
  size_t at = 0;
  while (at <= target.size()) {
    const size_t slash = target.find('/', at);
    const std::string_view seg = target.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
    if (looksLikeId(seg)) out += ":id"; else out += seg;
    if (slash == std::string_view::npos) break;
    out += '/';
    at = slash + 1;
  }
  return out;
}

void appendJsonString(std::string& out, std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (plain) {
    out += '"';
    out.append(s);
    out += '"';
    return;
  }
  out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void appendLogTime(std::string& out, WallTime t) {
  // The date and time of day change once a second: formatted (formatRfc3339, whole seconds,
  // without its "Z") once per second per thread; the milliseconds always, in fixed width.
  thread_local int64_t cached_second = -1;
  thread_local std::string cached;
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const int64_t second = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  if (second != cached_second) {
    cached = formatRfc3339(WallTime{} + std::chrono::seconds(second));
    cached.pop_back();
    cached_second = second;
  }
  out.append(cached);
  const int frac = static_cast<int>(ms - second * 1000);
  const char digits[] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                         static_cast<char>('0' + frac % 10), 'Z'};
  out.append(digits, sizeof digits);
}

std::string clientForLog(const std::string& ip, AccessLogClient mode) {
  if (mode == AccessLogClient::kNone) return {};
  if (mode == AccessLogClient::kFull) return ip;
  unsigned char bytes[16];
  char text[INET6_ADDRSTRLEN];
  if (::inet_pton(AF_INET, ip.c_str(), bytes) == 1) {
    bytes[3] = 0;
    if (::inet_ntop(AF_INET, bytes, text, sizeof text)) return text;
  } else if (::inet_pton(AF_INET6, ip.c_str(), bytes) == 1) {
    static const unsigned char kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes, kV4Mapped, sizeof kV4Mapped) == 0) {
      bytes[15] = 0;  // an IPv4 client on a dual-stack listener: its /24, as above
    } else {
      std::memset(bytes + 6, 0, 10);
    }
    if (::inet_ntop(AF_INET6, bytes, text, sizeof text)) return text;
  }
  return {};  // not an address: nothing rather than something unexpected
}

StatusOr<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& path, prometheus::Counter* dropped) {
  const int fd = openForAppend(path);
  if (fd < 0) return Unavailable("access log " + path + ": " + std::strerror(errno));
  return std::unique_ptr<AccessLog>(new AccessLog(path, fd, dropped));
}

AccessLog::AccessLog(std::string path, int fd, prometheus::Counter* dropped)
    : path_(std::move(path)), fd_(fd), dropped_metric_(dropped) {
  writer_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  writer_.join();
  ::close(fd_);
}

void AccessLog::add(std::string_view line) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() + line.size() + 1 > kMaxBuffered) {
      drop(1);
      return;
    }
    const size_t before = pending_.size();
    pending_.append(line);
    pending_ += '\n';
    // The writer waits for the first line, then for a batch (or kFlushEvery): one wake-up per
    // line cost a context switch per request.
    wake = before == 0 || (before < kFlushBytes && pending_.size() >= kFlushBytes);
  }
  if (wake) wake_.notify_one();
}

Status AccessLog::reopen() {
  const int fd = openForAppend(path_);
  if (fd < 0) return Unavailable("access log " + path_ + ": " + std::strerror(errno));
  std::lock_guard<std::mutex> lock(fd_mu_);
  ::close(fd_);
  fd_ = fd;
  return Status::Ok();
}

void AccessLog::drop(uint64_t lines) {
  dropped_.fetch_add(lines, std::memory_order_relaxed);
  if (dropped_metric_) dropped_metric_->Increment(static_cast<double>(lines));
}

void AccessLog::run() {
  std::string out;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    wake_.wait_for(lock, kFlushEvery, [this] { return stop_ || pending_.size() >= kFlushBytes; });
    if (pending_.empty()) return;  // stopping, all written
    out.swap(pending_);
    lock.unlock();
    {
      std::lock_guard<std::mutex> fd_lock(fd_mu_);
      size_t done = 0;
      while (done < out.size()) {
        const ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {  // disk full, file gone: these lines are lost, counted by the newlines
          drop(static_cast<uint64_t>(std::count(out.begin() + static_cast<std::ptrdiff_t>(done), out.end(), '\n')));
          break;
        }
        done += static_cast<size_t>(n);
      }
    }
    out.clear();
    lock.lock();
  }
}

}  // namespace greenlight::proxy
