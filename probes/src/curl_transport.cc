#include "greenlight/probes/curl_transport.h"

#include <curl/curl.h>

#include <cstring>
#include <ctime>

namespace greenlight::probes {
namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

Duration micros(curl_off_t us) { return std::chrono::microseconds(us); }

FailureReason reasonOf(CURLcode code) {
  switch (code) {
    case CURLE_OK: return FailureReason::kNone;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return FailureReason::kDns;
    case CURLE_COULDNT_CONNECT: return FailureReason::kConnect;
    case CURLE_OPERATION_TIMEDOUT: return FailureReason::kTimeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED: return FailureReason::kTls;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return FailureReason::kConnection;
    default: return FailureReason::kHttp;
  }
}

// "Jan  1 00:00:00 2027 GMT" as printed by OpenSSL into curl's certinfo.
std::optional<WallTime> parseCertTime(const char* text) {
  std::tm tm{};
  const char* end = strptime(text, "%b %d %H:%M:%S %Y", &tm);
  if (!end) return std::nullopt;
  time_t t = timegm(&tm);
  return std::chrono::system_clock::from_time_t(t);
}

}  // namespace

struct CurlTransport::Transfer {
  RequestId id = 0;
  CURL* easy = nullptr;
  TransportRequest request;
  std::function<void(TransportResult)> done;
  TransportResult result;
  curl_slist* headers = nullptr;
  curl_slist* connect_to = nullptr;
  char error[CURL_ERROR_SIZE] = {0};

  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);  // only when not handed back to the idle pool
    curl_slist_free_all(headers);
    curl_slist_free_all(connect_to);
  }

  static size_t onBody(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    size_t len = size * n;
    t->result.body_length += static_cast<int64_t>(len);
    if (t->request.keep_body) {
      size_t room = t->request.max_body_bytes - std::min(t->request.max_body_bytes, t->result.body.size());
      t->result.body.append(data, std::min(room, len));
      if (len > room) t->result.body_truncated = true;
    }
    return len;
  }

  static size_t onHeader(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    size_t len = size * n;
    std::string_view line(data, len);
    if (line.rfind("HTTP/", 0) == 0) {
      t->result.headers.clear();  // a new response (after a redirect or 100-continue)
      return len;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return len;
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    if (t->result.headers.size() < 200) t->result.headers.emplace_back(std::move(name), std::string(value));
    return len;
  }
};

CurlTransport::CurlTransport() {
  static CurlGlobal global;
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 0L);
}

CurlTransport::~CurlTransport() {
  for (auto& [id, t] : transfers_) curl_multi_remove_handle(multi_, t->easy);
  transfers_.clear();
  for (void* e : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(e));
  curl_multi_cleanup(multi_);
}

RequestId CurlTransport::start(TransportRequest request,
                               std::function<void(TransportResult)> done) {
  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->request = std::move(request);
  t->done = std::move(done);
  CURL* e;
  if (!idle_handles_.empty()) {
    e = static_cast<CURL*>(idle_handles_.back());
    idle_handles_.pop_back();
  } else {
    e = curl_easy_init();
  }
  t->easy = e;
  const TransportRequest& r = t->request;
  const TlsSettings& tls = r.tls;

  std::string url;
  if (r.kind == StepKind::kHttp) {
    url = r.url;
  } else {
    // Connect only: TCP, or TCP plus the TLS handshake. An explicit server_name is what the
    // handshake presents and verifies, while CONNECT_TO sends it to the configured address.
    std::string host = r.url.substr(0, r.url.rfind(':'));
    std::string port = r.url.substr(r.url.rfind(':') + 1);
    std::string name = (r.kind == StepKind::kTls && !tls.server_name.empty()) ? tls.server_name : host;
    url = std::string(r.kind == StepKind::kTls ? "https://" : "http://") + name + ":" + port + "/";
    if (name != host) {
      t->connect_to = curl_slist_append(nullptr, (name + ":" + port + ":" + host + ":" + port).c_str());
      curl_easy_setopt(e, CURLOPT_CONNECT_TO, t->connect_to);
    }
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
  }
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, toMillis(r.timeout))));
  curl_easy_setopt(e, CURLOPT_USERAGENT, "Greenlight-Probe/0.1");
  curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, tls.insecure_skip_verify ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, tls.insecure_skip_verify ? 0L : 2L);
  if (!tls.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, tls.ca_file.c_str());
  if (!tls.cert_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, tls.cert_file.c_str());
    curl_easy_setopt(e, CURLOPT_SSLKEY, tls.key_file.c_str());
  }
  if (r.kind == StepKind::kHttp) {
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, r.http_version == HttpVersion::kHttp2
                                                  ? CURL_HTTP_VERSION_2TLS
                                                  : CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, r.follow_redirects ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, static_cast<long>(r.max_redirects));
    if (r.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (r.method != "GET") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
      curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, r.body.c_str());
      if (r.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    for (const auto& [k, v] : r.headers) {
      t->headers = curl_slist_append(t->headers, (k + ": " + v).c_str());
    }
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::onBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    if (r.keep_headers) {
      curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::onHeader);
      curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    }
  }
  RequestId id = t->id;
  curl_multi_add_handle(multi_, e);
  transfers_.emplace(id, std::move(t));
  started_since_perform_ = true;
  return id;
}

void CurlTransport::cancel(RequestId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  curl_multi_remove_handle(multi_, it->second->easy);
  transfers_.erase(it);
}

void CurlTransport::finish(Transfer* t, int code_int) {
  CURLcode code = static_cast<CURLcode>(code_int);
  CURL* e = t->easy;
  TransportResult& res = t->result;
  res.error = reasonOf(code);
  if (code != CURLE_OK) {
    res.error_message = t->error[0] ? t->error : curl_easy_strerror(code);
  }
  curl_off_t namelookup = 0, connect = 0, appconnect = 0, pretransfer = 0, starttransfer = 0,
             total = 0, cl = -1;
  curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &namelookup);
  curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect);
  curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &appconnect);
  curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &starttransfer);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
  curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  res.connected = connect > 0 || (code == CURLE_OK);
  res.timings.resolve = micros(namelookup);
  if (connect > 0) res.timings.connect = micros(connect - namelookup);
  if (appconnect > 0) res.timings.tls = micros(appconnect - connect);
  if (starttransfer > 0) {
    res.timings.processing = micros(starttransfer - pretransfer);
    res.timings.transfer = micros(total - starttransfer);
  }
  res.total = micros(total);
  res.content_length = cl;
  long status = 0, version = 0, redirects = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
  curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
  res.status = static_cast<int>(status);
  res.redirects = static_cast<int>(redirects);
  switch (version) {
    case CURL_HTTP_VERSION_1_0: res.http_version = 1.0; break;
    case CURL_HTTP_VERSION_1_1: res.http_version = 1.1; break;
    case CURL_HTTP_VERSION_2_0: res.http_version = 2; break;
    case CURL_HTTP_VERSION_3: res.http_version = 3; break;
    default: res.http_version = 0;
  }
  char* scheme = nullptr;
  curl_easy_getinfo(e, CURLINFO_SCHEME, &scheme);
  res.ssl = scheme && (std::strcmp(scheme, "HTTPS") == 0 || std::strcmp(scheme, "https") == 0);
  char* ip = nullptr;
  curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
  if (ip) res.ip = ip;
  curl_certinfo* certs = nullptr;
  if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &certs) == CURLE_OK && certs) {
    for (int i = 0; i < certs->num_of_certs; ++i) {
      for (curl_slist* s = certs->certinfo[i]; s; s = s->next) {
        static const char kExpire[] = "Expire date:";
        if (std::strncmp(s->data, kExpire, sizeof kExpire - 1) != 0) continue;
        if (auto when = parseCertTime(s->data + sizeof kExpire - 1)) {
          if (!res.cert_earliest_expiry || *when < *res.cert_earliest_expiry) res.cert_earliest_expiry = when;
        }
      }
    }
  }
  auto done = std::move(t->done);
  TransportResult out = std::move(res);
  curl_multi_remove_handle(multi_, e);
  if (idle_handles_.size() < 256) {
    curl_easy_reset(e);
    idle_handles_.push_back(e);
    t->easy = nullptr;
  }
  transfers_.erase(t->id);
  done(std::move(out));
}

void CurlTransport::perform() {
  int running = 0;
  do {
    started_since_perform_ = false;
    curl_multi_perform(multi_, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
      if (t) finish(t, msg->data.result);
    }
    // A callback may have started new transfers: get them going before sleeping.
  } while (started_since_perform_);
}

void CurlTransport::poll(Duration max_wait) {
  int ms = static_cast<int>(std::clamp<int64_t>(toMillis(max_wait), 0, 1000));
  int numfds = 0;
  curl_multi_poll(multi_, nullptr, 0, ms, &numfds);
}

void CurlTransport::wakeup() { curl_multi_wakeup(multi_); }

}  // namespace greenlight::probes
