// Client load for data-plane tests: N threads sending GET / on their own keep-alive connections
// until stopped. An answer is `ok` if it is a 200 whose body `served` accepts, else `failed`;
// ok answers are also counted per body.
#pragma once

#include <httplib.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace greenlight::testing {

class KeepAliveLoad {
 public:
  KeepAliveLoad(int port, int threads, std::function<bool(const std::string&)> served) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, port, served] {
        httplib::Client cli("127.0.0.1", port);
        cli.set_keep_alive(true);
        while (!done_) {
          auto res = cli.Get("/");
          const bool good = res && res->status == 200 && served(res->body);
          (good ? ok : failed)++;
          if (good) {
            std::lock_guard<std::mutex> lock(mu_);
            ++by_body_[res->body];
          }
        }
      });
    }
  }
  ~KeepAliveLoad() { stop(); }
  void stop() {
    done_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int answeredBy(const std::string& body) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_body_.find(body);
    return it == by_body_.end() ? 0 : it->second;
  }
  std::atomic<int> ok{0}, failed{0};

 private:
  std::atomic<bool> done_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::map<std::string, int> by_body_;
};

}  // namespace greenlight::testing
