#pragma once
// A small blocking HTTP/1.1 client for tests, keeping its connection alive between requests.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace pix::test {

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// @brief HTTPS settings of a client: the CA the server's certificate must chain to, and an
/// optional client certificate (mutual TLS).
struct TlsClientOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port, std::string host = "127.0.0.1");
  /// HTTPS, verifying the server's certificate against `tls.ca_file` and `host`.
  HttpClient(std::uint16_t port, TlsClientOptions tls, std::string host = "127.0.0.1");
  ~HttpClient();
  /// Sends one request; reconnects first when the server closed the connection. Throws on I/O errors.
  Reply request(const std::string& method, const std::string& target, const std::string& body = "",
                const std::map<std::string, std::string>& headers = {{"Content-Type", "application/json"}});
  Reply post_json(const std::string& target, const std::string& body,
                  std::map<std::string, std::string> extra_headers = {});

 private:
  void connect();
  void reset();
  std::string host_;
  std::uint16_t port_;
  boost::asio::io_context io_;
  std::optional<boost::asio::ssl::context> tls_context_;
  std::optional<boost::beast::tcp_stream> stream_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_stream_;
};

/// POSTs `body` to `target` until it answers `status` (e.g. a broker coming back) or `timeout`;
/// returns the last reply, whatever it was.
Reply post_until_status(HttpClient& client, const std::string& target, const std::string& body, int status,
                        std::chrono::milliseconds timeout);

}  // namespace pix::test
