// Drives prometheus-blackbox-exporter the way Prometheus would: N probe targets, each asked for
// once per interval, spread evenly, over keep-alive connections. Used by probe_bench.py so the
// exporter does the same work as greenlight in the same run. Prints MEASURE_START/MEASURE_END
// when the measured window opens and closes, then one JSON line of counts.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Request {
  std::string body;
  bool measured = false;
};

size_t onBody(char* data, size_t size, size_t n, void* self) {
  auto* r = static_cast<Request*>(self);
  if (r->body.size() < 65536) r->body.append(data, size * n);
  return size * n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s EXPORTER_URL TARGET_PREFIX N INTERVAL_MS WARMUP_S:MEASURE_S\n", argv[0]);
    return 2;
  }
  const std::string exporter = argv[1];  // e.g. http://127.0.0.1:9115/probe?module=http_2xx&target=
  const std::string prefix = argv[2];    // e.g. http://127.0.0.1:8080/t/
  const int n = std::atoi(argv[3]);
  const auto interval = std::chrono::milliseconds(std::atoi(argv[4]));
  int warmup_s = 0, measure_s = 0;
  std::sscanf(argv[5], "%d:%d", &warmup_s, &measure_s);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 512L);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 256L);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::seconds(warmup_s);
  const auto measure_to = measure_from + std::chrono::seconds(measure_s);
  const auto step = std::chrono::duration_cast<Clock::duration>(interval) / n;
  long long issued = 0;
  long long sent = 0, ok = 0, failed = 0;
  std::vector<double> lateness_ms;
  bool started = false;
  int running = 0;
  for (;;) {
    auto now = Clock::now();
    if (!started && now >= measure_from) {
      std::printf("MEASURE_START\n");
      std::fflush(stdout);
      started = true;
    }
    if (now >= measure_to) break;
    // Start every request whose planned time has come.
    while (start + step * issued <= now) {
      auto planned = start + step * issued;
      int target = static_cast<int>(issued % n);
      auto* r = new Request;
      r->measured = planned >= measure_from && planned < measure_to;
      if (r->measured) {
        ++sent;
        lateness_ms.push_back(std::chrono::duration<double, std::milli>(now - planned).count());
      }
      CURL* e = curl_easy_init();
      std::string url = exporter + prefix + std::to_string(target);
      curl_easy_setopt(e, CURLOPT_URL, url.c_str());
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, onBody);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
      curl_easy_setopt(e, CURLOPT_PRIVATE, r);
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      curl_multi_add_handle(multi, e);
      ++issued;
    }
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Request* r = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &r);
      if (r->measured) {
        bool success = m->data.result == CURLE_OK && r->body.find("\nprobe_success 1") != std::string::npos;
        (success ? ok : failed)++;
      }
      curl_multi_remove_handle(multi, m->easy_handle);
      curl_easy_cleanup(m->easy_handle);
      delete r;
    }
    auto next = start + step * issued;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
    int numfds = 0;
    curl_multi_poll(multi, nullptr, 0, static_cast<int>(std::clamp<long long>(wait, 0, 100)), &numfds);
  }
  std::printf("MEASURE_END\n");
  std::fflush(stdout);
  std::sort(lateness_ms.begin(), lateness_ms.end());
  auto pct = [&](double p) {
    return lateness_ms.empty() ? 0.0 : lateness_ms[static_cast<size_t>(p * (lateness_ms.size() - 1))];
  };
  std::printf("{\"sent\":%lld,\"ok\":%lld,\"failed\":%lld,\"in_flight\":%d,\"lateness_p50_ms\":%.3f,\"lateness_p99_ms\":%.3f}\n",
              sent, ok, failed, running, pct(0.5), pct(0.99));
  curl_multi_cleanup(multi);
  return 0;
}
