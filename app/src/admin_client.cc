#include "greenlight/app/admin_client.h"

#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace greenlight::app {

using nlohmann::json;

namespace {

struct Reply {
  long status = 0;
  std::string body;
  std::string error;
};

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string token(const ClientOptions& o) {
  if (!o.token_file.empty()) {
    std::ifstream in(o.token_file);
    std::string t;
    std::getline(in, t);
    return t;
  }
  const char* env = std::getenv("GREENLIGHT_TOKEN");
  return env ? env : "";
}

Reply call(const ClientOptions& o, const std::string& method, const std::string& path, const std::string& body = "") {
  Reply r;
  CURL* c = curl_easy_init();
  const std::string url = o.url + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!o.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  const std::string t = token(o);
  if (!t.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + t).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!body.empty()) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) r.error = curl_easy_strerror(rc);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}

// Prints why a call failed; returns the exit code (0 when it did not).
int failed(const ClientOptions& o, const Reply& r) {
  if (!r.error.empty()) {
    std::cerr << "greenlight: cannot reach " << o.url << ": " << r.error
              << " (set GREENLIGHT_URL or --url to the admin address of `greenlight run`)\n";
    return 1;
  }
  if (r.status == 401 || r.status == 403) {
    std::cerr << "greenlight: " << r.status << ": " << r.body
              << " (put a token in GREENLIGHT_TOKEN or a file given with --token-file)\n";
    return 1;
  }
  if (r.status < 200 || r.status >= 300) {
    std::cerr << "greenlight: " << r.status << ": " << r.body << "\n";
    return 1;
  }
  return 0;
}

std::string labelsText(const json& labels, bool skip_alertname) {
  std::string out;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (skip_alertname && it.key() == "alertname") continue;
    out += (out.empty() ? "" : ",") + it.key() + "=" + it.value().get<std::string>();
  }
  return out;
}

std::string ago(double seconds) {
  char buf[32];
  if (seconds < 120) std::snprintf(buf, sizeof buf, "%.0fs", seconds);
  else if (seconds < 7200) std::snprintf(buf, sizeof buf, "%.0fm", seconds / 60);
  else std::snprintf(buf, sizeof buf, "%.1fh", seconds / 3600);
  return buf;
}

}  // namespace

int alertsCommand(const ClientOptions& o) {
  const Reply r = call(o, "GET", "/api/v1/alerts");
  if (int rc = failed(o, r)) return rc;
  if (o.json) {
    std::cout << r.body << "\n";
    return 0;
  }
  const json j = json::parse(r.body);
  std::printf("%-8s %-28s %-8s %-12s %s\n", "STATE", "ALERT", "FOR", "MUTED", "LABELS");
  for (const auto& a : j["alerts"]) {
    std::string muted = a["inhibited"].get<bool>() ? "inhibited" : "";
    if (!a["silenced_by"].empty()) muted = "silenced";
    std::printf("%-8s %-28s %-8s %-12s %s\n", a["state"].get<std::string>().c_str(),
                a["labels"].value("alertname", "").c_str(), ago(a["for_seconds"].get<double>()).c_str(), muted.c_str(),
                labelsText(a["labels"], true).c_str());
  }
  if (j["alerts"].empty()) std::printf("(no pending or firing alerts)\n");
  if (j["outbox_depth"].get<int>() > 0) std::printf("%d notification(s) waiting for delivery\n", j["outbox_depth"].get<int>());
  return 0;
}

int silenceAddCommand(const ClientOptions& o, const std::vector<std::string>& matchers, const std::string& duration,
                      const std::string& comment) {
  const json body = {{"matchers", matchers}, {"duration", duration}, {"comment", comment}};
  const Reply r = call(o, "POST", "/api/v1/silences", body.dump());
  if (int rc = failed(o, r)) return rc;
  std::cout << (o.json ? r.body : json::parse(r.body)["id"].get<std::string>()) << "\n";
  return 0;
}

int silenceListCommand(const ClientOptions& o) {
  const Reply r = call(o, "GET", "/api/v1/silences");
  if (int rc = failed(o, r)) return rc;
  if (o.json) {
    std::cout << r.body << "\n";
    return 0;
  }
  const json j = json::parse(r.body);
  std::printf("%-32s %-8s %-20s %-12s %-30s %s\n", "ID", "STATE", "ENDS", "BY", "MATCHERS", "COMMENT");
  for (const auto& s : j["silences"]) {
    std::string m;
    for (const auto& x : s["matchers"]) m += (m.empty() ? "" : ",") + x.get<std::string>();
    std::printf("%-32s %-8s %-20s %-12s %-30s %s\n", s["id"].get<std::string>().c_str(),
                s["state"].get<std::string>().c_str(), s["ends_at"].get<std::string>().c_str(),
                s["created_by"].get<std::string>().c_str(), m.c_str(), s["comment"].get<std::string>().c_str());
  }
  return 0;
}

int rolloutCommand(const ClientOptions& o, const std::string& action, const std::string& service,
                   const std::string& release, const std::string& reason) {
  Reply r;
  if (action == "history") {
    r = call(o, "GET", "/api/v1/rollouts/" + service + "/history");
    if (int rc = failed(o, r)) return rc;
    if (o.json) {
      std::cout << r.body << "\n";
      return 0;
    }
    for (const auto& e : json::parse(r.body)) {
      std::printf("%s  %-10s %-18s %-10s %s\n", e.value("time", "").c_str(), e.value("actor", "").c_str(),
                  e.value("action", "").c_str(), e.value("release", "").c_str(), e.value("detail", "").c_str());
    }
    return 0;
  }
  if (action == "status") {
    r = call(o, "GET", service.empty() ? "/api/v1/rollouts" : "/api/v1/rollouts/" + service);
  } else {
    json body = json::object();
    if (!release.empty()) body["release"] = release;
    if (!reason.empty()) body["reason"] = reason;
    r = call(o, "POST", "/api/v1/rollouts/" + service + "/" + action, body.dump());
  }
  if (int rc = failed(o, r)) return rc;
  if (o.json) {
    std::cout << r.body << "\n";
    return 0;
  }
  json j = json::parse(r.body);
  if (!j.is_array()) j = json::array({j});
  for (const auto& s : j) {
    std::string weights;
    for (auto it = s["weights"].begin(); it != s["weights"].end(); ++it) {
      weights += (weights.empty() ? "" : " ") + it.key() + "=" + std::to_string(it.value().get<int>()) + "%";
    }
    std::printf("%s: %s%s, %s for %s; stable %s on %s", s["service"].get<std::string>().c_str(),
                s["phase"].get<std::string>().c_str(), s["paused"].get<bool>() ? " (paused)" : "", weights.c_str(),
                ago(s["seconds_in_phase"].get<double>()).c_str(), s["stable_release"].get<std::string>().c_str(),
                s["stable"].get<std::string>().c_str());
    if (!s["candidate_release"].get<std::string>().empty()) {
      std::printf("; new %s on %s", s["candidate_release"].get<std::string>().c_str(), s["candidate"].get<std::string>().c_str());
    }
    std::printf("\n");
    if (!s["reason"].get<std::string>().empty()) std::printf("  reason: %s\n", s["reason"].get<std::string>().c_str());
    for (const auto& a : s["results"]) std::printf("  analysis: %s\n", a.get<std::string>().c_str());
  }
  return 0;
}

int silenceExpireCommand(const ClientOptions& o, const std::string& id) {
  const Reply r = call(o, "DELETE", "/api/v1/silences/" + id);
  if (int rc = failed(o, r)) return rc;
  std::cout << "expired " << id << "\n";
  return 0;
}

}  // namespace greenlight::app
