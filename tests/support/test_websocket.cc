#include "support/test_websocket.h"

#include <sys/socket.h>

#include <utility>  // before Asio: its awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/websocket.hpp>

namespace greenlight::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

SteadyTime steadyNow() { return std::chrono::steady_clock::now(); }

struct WebSocketBackend::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::mutex mu;
  std::vector<int> fds;  // open connections, shut down at stop()
  std::vector<std::thread> connections;
  std::atomic<bool> stopping{false};
};

WebSocketBackend::WebSocketBackend(std::string name) : impl_(std::make_unique<Impl>()) {
  tcp::endpoint at(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(at.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(at);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->accept_thread = std::thread([this, name] {
    for (;;) {
      tcp::socket socket(impl_->io);
      boost::system::error_code ec;
      impl_->acceptor.accept(socket, ec);
      if (ec || impl_->stopping) return;
      ++accepted_;
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->fds.push_back(socket.native_handle());
      impl_->connections.emplace_back([name, s = std::move(socket)]() mutable {
        websocket::stream<tcp::socket> ws(std::move(s));
        boost::system::error_code ec;
        ws.accept(ec);
        while (!ec) {
          beast::flat_buffer in;
          ws.read(in, ec);
          if (ec) break;
          ws.text(true);
          ws.write(asio::buffer(name + ":" + beast::buffers_to_string(in.data())), ec);
        }
      });
    }
  });
}

WebSocketBackend::~WebSocketBackend() { stop(); }

void WebSocketBackend::stop() {
  if (!impl_->accept_thread.joinable()) return;
  impl_->stopping = true;
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);  // wakes the blocking accept
  impl_->accept_thread.join();
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (int fd : impl_->fds) ::shutdown(fd, SHUT_RDWR);  // wakes the blocking reads
  for (auto& t : impl_->connections) t.join();
  impl_->connections.clear();
}

struct WebSocketClient::Impl {
  asio::io_context io;
  websocket::stream<tcp::socket> ws{io};
};

WebSocketClient::WebSocketClient(int port, const std::string& path) : impl_(std::make_unique<Impl>()) {
  boost::system::error_code ec;
  impl_->ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)), ec);
  if (ec) return;
  timeval tv{10, 0};  // no blocking read may hang a test
  setsockopt(impl_->ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  impl_->ws.handshake("127.0.0.1:" + std::to_string(port), path, ec);
  ok_ = !ec;
}

WebSocketClient::~WebSocketClient() {
  boost::system::error_code ec;
  impl_->ws.next_layer().shutdown(tcp::socket::shutdown_both, ec);
  if (watcher_.joinable()) watcher_.join();
}

std::string WebSocketClient::echo(const std::string& message) {
  boost::system::error_code ec;
  impl_->ws.text(true);
  impl_->ws.write(asio::buffer(message), ec);
  if (ec) return "";
  beast::flat_buffer in;
  impl_->ws.read(in, ec);
  if (ec) return "";
  return beast::buffers_to_string(in.data());
}

void WebSocketClient::watchForClose() {
  watcher_ = std::thread([this] {
    boost::system::error_code ec;
    while (!ec) {
      beast::flat_buffer in;
      impl_->ws.read(in, ec);
    }
    std::lock_guard<std::mutex> lock(mu_);
    closed_at_ = steadyNow();
    closed_ = true;
  });
}

SteadyTime WebSocketClient::closedAt() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_at_;
}

}  // namespace greenlight::testing
