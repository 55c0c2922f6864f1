#include "support/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <thread>

namespace pix::test {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

HttpClient::HttpClient(std::uint16_t port, std::string host) : host_(std::move(host)), port_(port) {}

HttpClient::HttpClient(std::uint16_t port, TlsClientOptions tls, std::string host)
    : host_(std::move(host)), port_(port) {
  namespace ssl = boost::asio::ssl;
  tls_context_.emplace(ssl::context::tls_client);
  tls_context_->set_verify_mode(ssl::verify_peer);
  if (!tls.ca_file.empty()) tls_context_->load_verify_file(tls.ca_file);
  if (!tls.cert_file.empty()) {
    tls_context_->use_certificate_chain_file(tls.cert_file);
    tls_context_->use_private_key_file(tls.key_file, ssl::context::pem);
  }
}

HttpClient::~HttpClient() {
  reset();
}

void HttpClient::reset() {
  boost::beast::error_code ec;
  if (stream_) stream_->socket().shutdown(tcp::socket::shutdown_both, ec);
  if (tls_stream_) boost::beast::get_lowest_layer(*tls_stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.reset();
  tls_stream_.reset();
}

void HttpClient::connect() {
  const tcp::endpoint ep(boost::asio::ip::make_address(host_), port_);
  if (tls_context_) {
    tls_stream_.emplace(io_, *tls_context_);
    auto& lowest = boost::beast::get_lowest_layer(*tls_stream_);
    lowest.expires_after(std::chrono::seconds(10));
    lowest.connect(ep);
    lowest.socket().set_option(tcp::no_delay(true));
    // The server's certificate must name the host we asked for (an IP SAN for 127.0.0.1).
    tls_stream_->set_verify_callback(boost::asio::ssl::host_name_verification(host_));
    tls_stream_->handshake(boost::asio::ssl::stream_base::client);
    return;
  }
  stream_.emplace(io_);
  stream_->expires_after(std::chrono::seconds(10));
  stream_->connect(ep);
  stream_->socket().set_option(tcp::no_delay(true));
}

namespace {

template <typename Stream>
void exchange(Stream& stream, const http::request<http::string_body>& req, http::response<http::string_body>& res,
              boost::beast::error_code& ec) {
  boost::beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
  http::write(stream, req, ec);
  boost::beast::flat_buffer buf;
  if (ec) return;
  // A response to HEAD has the headers of a GET and no body, whatever Content-Length says.
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  parser.skip(req.method() == http::verb::head);
  http::read(stream, buf, parser, ec);
  if (!ec) res = parser.release();
}

}  // namespace

Reply HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                          const std::map<std::string, std::string>& headers) {
  for (int attempt = 0;; ++attempt) {
    if (!stream_ && !tls_stream_) connect();
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    if (req.method() == http::verb::unknown) req.method_string(method);
    req.set(http::field::host, host_);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    boost::beast::error_code ec;
    http::response<http::string_body> res;
    if (tls_stream_) {
      exchange(*tls_stream_, req, res, ec);
    } else {
      exchange(*stream_, req, res, ec);
    }
    if (ec) {
      reset();
      // A keep-alive connection the server closed meanwhile: one fresh try.
      if (attempt == 0 && (ec == http::error::end_of_stream || ec == boost::asio::error::connection_reset ||
                           ec == boost::asio::error::broken_pipe || ec == boost::asio::ssl::error::stream_truncated)) {
        continue;
      }
      throw boost::system::system_error(ec, "http " + method + " " + target);
    }
    Reply r;
    r.status = res.result_int();
    for (const auto& f : res) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      r.headers[name] = std::string(f.value());
    }
    r.body = res.body();
    if (!res.keep_alive()) reset();
    return r;
  }
}

Reply HttpClient::post_json(const std::string& target, const std::string& body,
                            std::map<std::string, std::string> extra_headers) {
  extra_headers.emplace("Content-Type", "application/json");
  return request("POST", target, body, extra_headers);
}

Reply post_until_status(HttpClient& client, const std::string& target, const std::string& body, int status,
                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Reply r = client.post_json(target, body);
    if (r.status == status || std::chrono::steady_clock::now() >= deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace pix::test
