#include "support/test_receiver.h"

#include <httplib.h>

#include <stdexcept>

#include "greenlight/common/http_listen.h"

namespace greenlight::testing {

struct RecordingReceiver::Impl {
  httplib::Server server;
  std::thread thread;
  mutable std::mutex mu;
  std::deque<Reply> script;
  std::vector<Request> requests;
};

RecordingReceiver::RecordingReceiver(int port) : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  listenExclusively(im.server);
  im.server.Post(".*", [&im](const httplib::Request& req, httplib::Response& res) {
    Reply reply;
    {
      std::lock_guard<std::mutex> lock(im.mu);
      Request r{req.path, {}, req.body, std::chrono::steady_clock::now()};
      for (const auto& [k, v] : req.headers) r.headers[k] = v;
      im.requests.push_back(std::move(r));
      if (!im.script.empty()) {
        reply = im.script.front();
        im.script.pop_front();
      }
    }
    res.status = reply.status;
    for (const auto& [k, v] : reply.headers) res.set_header(k, v);
    res.set_content(reply.body, "text/plain");
  });
  if (port == 0) {
    port_ = im.server.bind_to_any_port("127.0.0.1");
  } else {
    port_ = im.server.bind_to_port("127.0.0.1", port) ? port : -1;
  }
  if (port_ <= 0) throw std::runtime_error("receiver cannot bind");
  im.thread = std::thread([&im] { im.server.listen_after_bind(); });
  // stop() is a no-op until the server runs: wait for it, or a quick stop would hang the join.
  while (!im.server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

RecordingReceiver::~RecordingReceiver() { stop(); }

void RecordingReceiver::stop() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string RecordingReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void RecordingReceiver::script(std::vector<Reply> replies) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (auto& r : replies) impl_->script.push_back(std::move(r));
}

std::vector<RecordingReceiver::Request> RecordingReceiver::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

size_t RecordingReceiver::count() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests.size();
}

}  // namespace greenlight::testing
