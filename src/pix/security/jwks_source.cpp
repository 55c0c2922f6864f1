// JwksSource: the verifier's keys from a JWKS file or URL, refreshed in the background.
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <fstream>
#include <stdexcept>
#include <utility>

#include "pix/http/client.hpp"
#include "pix/security/jwt.hpp"

namespace pix::security {
namespace {

// ---- JWKS documents --------------------------------------------------------------------------

// One GET of a JWKS document. Empty on success, else why.
std::string http_get(const http::Url& url, const std::string& ca_file, std::chrono::seconds timeout,
                     std::size_t max_bytes, std::string& body) {
  http::ClientRequest request;
  request.url = url;
  request.headers = {{"Accept", "application/jwk-set+json, application/json"}};
  request.ca_file = ca_file;
  request.timeout = timeout;
  request.max_response_bytes = max_bytes;
  auto response = http::send_request(request);
  if (!response.error.empty()) return response.error;
  if (response.status != 200) {
    return "HTTP " + std::to_string(response.status) + " from " + url.host + ":" + std::to_string(url.port);
  }
  body = std::move(response.body);
  return {};
}

// The JWKS URL, or throws saying what is wrong with it.
http::Url jwks_url(std::string_view location) {
  std::string error;
  auto url = http::parse_url(location, error);
  if (!url) throw std::runtime_error("JWKS URL: " + error);
  return *url;
}

std::string read_file(const std::string& path, std::size_t max_bytes, std::string& contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open " + path;
  contents.assign(max_bytes + 1, '\0');
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (in.bad()) return "cannot read " + path;
  contents.resize(static_cast<std::size_t>(in.gcount()));
  if (contents.size() > max_bytes) return path + " is larger than " + std::to_string(max_bytes) + " bytes";
  return {};
}

bool is_url(std::string_view location) {
  return location.find("://") != std::string_view::npos;
}

// Zero or negative intervals would make the refresh thread spin.
JwksSource::Options checked(JwksSource::Options o) {
  if (o.refresh.count() <= 0 || o.file_check.count() <= 0 || o.fetch_timeout.count() <= 0) {
    throw std::invalid_argument("JWKS refresh, file_check and fetch_timeout must be positive");
  }
  return o;
}

}  // namespace

JwksSource::JwksSource(Options options, TokenVerifier& verifier)
    : options_(checked(std::move(options))), is_url_(is_url(options_.location)), verifier_(verifier) {
  if (is_url_) {
    // Throws on a malformed URL, before any fetch.
    if (!jwks_url(options_.location).tls) {
      spdlog::warn(
          "JWKS {}: fetched over plain http, which does not authenticate the server; use https, or http only on "
          "a trusted network",
          options_.location);
    }
  }
  last_stamp_ = stamp();  // taken before reading, so a write during the read is seen next time
  if (auto error = load(); !error.empty()) throw std::runtime_error("JWKS " + options_.location + ": " + error);
  thread_ = std::thread([this] { run(); });
}

JwksSource::~JwksSource() {
  {
    std::lock_guard lock(stop_mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<JwksSource::FileStamp> JwksSource::stamp() const {
  if (is_url_) return std::nullopt;
  struct stat st {};
  if (::stat(options_.location.c_str(), &st) != 0) return std::nullopt;
  constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
  return FileStamp{static_cast<std::int64_t>(st.st_mtim.tv_sec) * kNanosPerSecond + st.st_mtim.tv_nsec,
                   static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
}

std::string JwksSource::load() {
  std::string document;
  std::string error;
  try {
    error = is_url_ ? http_get(jwks_url(options_.location), options_.ca_file, options_.fetch_timeout,
                               options_.max_document_bytes, document)
                    : read_file(options_.location, options_.max_document_bytes, document);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) return error;
  if (loads() > 0 && document == last_document_) return {};  // unchanged: keep the verifier's cache
  auto parsed = parse_jwks(document);
  if (!parsed) return parsed.error;
  for (const auto& s : parsed.skipped) {
    spdlog::warn("JWKS {}: key #{} (kid {}) skipped: {}", options_.location, s.index, s.kid.empty() ? "-" : s.kid,
                 s.reason);
  }
  if (parsed.keys->empty()) return "no usable key in the set";
  const auto kids = parsed.keys->kids();
  verifier_.replace_keys(std::make_shared<const KeySet>(std::move(*parsed.keys)));
  last_document_ = std::move(document);
  loads_.fetch_add(1, std::memory_order_relaxed);
  std::string kid_list;
  for (const auto& kid : kids) kid_list += (kid_list.empty() ? "" : ", ") + kid;
  spdlog::info("JWKS {}: {} key(s) in use: {}", options_.location, kids.size(), kid_list);
  return {};
}

void JwksSource::run() {
  using Steady = std::chrono::steady_clock;
  auto next_refresh = Steady::now() + options_.refresh;
  std::unique_lock lock(stop_mutex_);
  while (!stop_) {
    const auto wake = is_url_ ? next_refresh : std::min(next_refresh, Steady::now() + options_.file_check);
    if (stop_cv_.wait_until(lock, wake, [this] { return stop_; })) break;
    lock.unlock();
    bool due = Steady::now() >= next_refresh;
    if (!is_url_) {
      if (auto now_stamp = stamp(); now_stamp != last_stamp_) {
        last_stamp_ = now_stamp;
        due = true;
      }
    }
    if (due) {
      next_refresh = Steady::now() + options_.refresh;
      if (auto error = load(); !error.empty()) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("JWKS {}: refresh failed, keeping the last good key set: {}", options_.location, error);
      }
    }
    lock.lock();
  }
}

}  // namespace pix::security
