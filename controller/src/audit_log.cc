#include "greenlight/controller/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "greenlight/common/crypto.h"
#include "greenlight/common/time_format.h"

namespace greenlight::controller {

using nlohmann::json;

namespace {

const std::string kGenesis(64, '0');

std::string hashOf(const std::string& prev, const std::string& body) {
  const auto d = sha256(prev + "\n" + body);
  return toHex(d.data(), d.size());
}

}  // namespace

AuditVerdict verifyAuditLog(const std::string& path) {
  AuditVerdict v;
  std::ifstream in(path);
  if (!in) {
    v.ok = false;
    v.why = "cannot read " + path;
    return v;
  }
  std::string prev = kGenesis, line;
  while (std::getline(in, line)) {
    ++v.lines;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("hash") || !j.contains("prev")) {
      v.ok = false;
      v.first_bad_line = v.lines;
      v.why = "not an audit line";
      return v;
    }
    const std::string hash = j["hash"].get<std::string>();
    if (j["prev"] != prev) {
      v.ok = false;
      v.first_bad_line = v.lines;
      v.why = "does not follow the line before it (a line was removed, reordered or inserted)";
      return v;
    }
    j.erase("hash");
    if (hashOf(prev, j.dump()) != hash) {
      v.ok = false;
      v.first_bad_line = v.lines;
      v.why = "its content does not match its hash (the line was edited)";
      return v;
    }
    prev = hash;
  }
  v.last_hash = prev;
  return v;
}

StatusOr<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path, const TimeSource& time) {
  std::string last = kGenesis;
  if (std::ifstream(path).good()) {
    const AuditVerdict v = verifyAuditLog(path);
    if (!v.ok) {
      return InvalidArgument("audit log " + path + ": line " + std::to_string(v.first_bad_line) + " " + v.why +
                             "; keep the file as evidence and start a new one elsewhere");
    }
    last = v.last_hash;
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("audit log " + path + ": cannot open for append");
  ::close(fd);
  return std::unique_ptr<AuditLog>(new AuditLog(path, time, last));
}

Status AuditLog::append(const AuditEntry& e) {
  std::lock_guard<std::mutex> lock(mu_);
  json j = {{"time", formatRfc3339(time_.wallNow())}, {"actor", e.actor},     {"action", e.action},
            {"service", e.service},             {"release", e.release}, {"detail", e.detail},
            {"prev", last_}};
  auto weights = [](const std::array<int, 2>& w) { return json{{"blue", w[0]}, {"green", w[1]}}; };
  if (e.weights_before) j["weights_before"] = weights(*e.weights_before);
  if (e.weights_after) j["weights_after"] = weights(*e.weights_after);
  const std::string hash = hashOf(last_, j.dump());
  j["hash"] = hash;
  const std::string line = j.dump() + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("audit log " + path_ + ": cannot open for append");
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Unavailable("audit log " + path_ + ": write failed");
  last_ = hash;
  return Status::Ok();
}

}  // namespace greenlight::controller
