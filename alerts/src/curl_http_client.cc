// The HttpClient notifiers use: one blocking libcurl request at a time on the deliverer thread,
// TLS verification on unless a receiver turns it off.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>

#include "greenlight/alerts/outbox.h"

namespace greenlight::alerts {
namespace {

size_t onBody(char* data, size_t size, size_t n, void* user) {
  auto* reply = static_cast<HttpReply*>(user);
  if (reply->body.size() < (64 << 10)) reply->body.append(data, size * n);  // enough for an error
  return size * n;
}

size_t onHeader(char* data, size_t size, size_t n, void* user) {
  auto* reply = static_cast<HttpReply*>(user);
  std::string line(data, size * n);
  if (auto colon = line.find(':'); colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.erase(0, 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    reply->headers[name] = value;
  }
  return size * n;
}

class CurlHttpClient final : public HttpClient {
 public:
  CurlHttpClient() : easy_(curl_easy_init()) {}
  ~CurlHttpClient() override { curl_easy_cleanup(easy_); }

  HttpReply send(const HttpRequestSpec& r) override {
    HttpReply reply;
    curl_easy_reset(easy_);
    curl_easy_setopt(easy_, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(easy_, CURLOPT_POST, 1L);
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, r.body.data());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(toMillis(r.timeout)));
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYPEER, r.verify_tls ? 1L : 0L);
    curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYHOST, r.verify_tls ? 2L : 0L);
    if (!r.ca_file.empty()) curl_easy_setopt(easy_, CURLOPT_CAINFO, r.ca_file.c_str());
    curl_slist* headers = nullptr;
    for (const auto& [k, v] : r.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, onHeader);
    curl_easy_setopt(easy_, CURLOPT_HEADERDATA, &reply);
    const CURLcode rc = curl_easy_perform(easy_);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      reply.status = 0;
      reply.error = curl_easy_strerror(rc);
      return reply;
    }
    long status = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    reply.status = static_cast<int>(status);
    return reply;
  }

 private:
  CURL* easy_;
};

}  // namespace

std::unique_ptr<HttpClient> makeCurlHttpClient() { return std::make_unique<CurlHttpClient>(); }

}  // namespace greenlight::alerts
