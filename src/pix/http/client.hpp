#pragma once
/// @file A small blocking HTTP/1.1 client (plain or TLS) for the background work that needs one:
/// JWKS fetches, span export, pix-admin's questions to a trace backend. One request per call on
/// a private io_context, every step under one deadline; not for the request path.

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "pix/http/url.hpp"

namespace pix::http {

struct ClientRequest {
  std::string method = "GET";
  Url url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// https: the CA certificates the server's chain is verified against ("" = the system's).
  std::string ca_file;
  std::chrono::milliseconds timeout{10'000};
  /// A longer answer is an error, not an allocation.
  std::size_t max_response_bytes = 1 << 20;
};

struct ClientResponse {
  int status = 0;  ///< 0: no HTTP answer; `error` says why
  std::string body;
  std::string retry_after;  ///< the Retry-After header, as sent
  std::string error;        ///< resolve, connect, TLS, send, read failures and the deadline
};

/// Sends `request` and reads the answer. A TLS server must present a certificate valid for the
/// URL's host (an IP literal is matched against IP SANs), with TLS 1.2 or later.
ClientResponse send_request(const ClientRequest& request);

}  // namespace pix::http
