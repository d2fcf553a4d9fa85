// Transport on libcurl's multi interface: one thread drives thousands of concurrent requests.
// Each request uses a fresh connection (a probe measures connect and TLS every time).
// Not thread-safe except wakeup(), which any thread may call to interrupt poll().
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "greenlight/probes/transport.h"

typedef void CURLM;

namespace greenlight::probes {

class CurlTransport final : public Transport {
 public:
  CurlTransport();
  ~CurlTransport() override;

  RequestId start(TransportRequest request, std::function<void(TransportResult)> done) override;
  void cancel(RequestId id) override;

  // Moves transfers forward and runs callbacks of finished ones.
  void perform();
  // Waits for socket activity, wakeup() or max_wait, whichever comes first.
  void poll(Duration max_wait);
  void wakeup();

 private:
  struct Transfer;
  void finish(Transfer* t, int curl_code);
  CURLM* multi_;
  RequestId next_id_ = 1;
  std::map<RequestId, std::unique_ptr<Transfer>> transfers_;
  std::vector<void*> idle_handles_;  // reset easy handles, reused (saves an allocation per probe)
  bool started_since_perform_ = false;
};

}  // namespace greenlight::probes
