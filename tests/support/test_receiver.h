// A local HTTP receiver that stands in for a webhook, Slack or PagerDuty: records every request
// and answers from a script (then 200). Binds 127.0.0.1 on a port it picks, or a given one.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace greenlight::testing {

class RecordingReceiver {
 public:
  struct Request {
    std::string path;
    std::map<std::string, std::string> headers;
    std::string body;
    std::chrono::steady_clock::time_point received;
  };
  struct Reply {
    int status = 200;
    std::string body = "ok";
    std::map<std::string, std::string> headers;
  };
  explicit RecordingReceiver(int port = 0);
  ~RecordingReceiver();
  int port() const { return port_; }
  std::string url(const std::string& path = "/hook") const;
  // The next requests get these replies, in order.
  void script(std::vector<Reply> replies);
  std::vector<Request> requests() const;
  size_t count() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace greenlight::testing
