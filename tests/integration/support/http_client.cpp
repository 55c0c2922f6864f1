#include "support/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <thread>

namespace pix::test {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

HttpClient::HttpClient(std::uint16_t port, std::string host) : host_(std::move(host)), port_(port) {}

HttpClient::~HttpClient() {
  if (stream_) {
    boost::beast::error_code ec;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ec);
  }
}

void HttpClient::connect() {
  stream_.emplace(io_);
  stream_->expires_after(std::chrono::seconds(10));
  stream_->connect(tcp::endpoint(boost::asio::ip::make_address(host_), port_));
  stream_->socket().set_option(tcp::no_delay(true));
}

Reply HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                          const std::map<std::string, std::string>& headers) {
  for (int attempt = 0;; ++attempt) {
    if (!stream_) connect();
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    if (req.method() == http::verb::unknown) req.method_string(method);
    req.set(http::field::host, host_);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    boost::beast::error_code ec;
    stream_->expires_after(std::chrono::seconds(30));
    http::write(*stream_, req, ec);
    http::response<http::string_body> res;
    boost::beast::flat_buffer buf;
    if (!ec) http::read(*stream_, buf, res, ec);
    if (ec) {
      stream_.reset();
      // A keep-alive connection the server closed meanwhile: one fresh try.
      if (attempt == 0 && (ec == http::error::end_of_stream || ec == boost::asio::error::connection_reset ||
                           ec == boost::asio::error::broken_pipe)) {
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
    if (!res.keep_alive()) stream_.reset();
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
