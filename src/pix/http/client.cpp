#include "pix/http/client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace pix::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

// TLS 1.2 or later, the peer verified against `ca_file` (the system's trust store when empty).
// Empty on success, else why.
std::string make_tls_context(asio::ssl::context& ctx, const std::string& ca_file) {
  boost::system::error_code ec;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  if (ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
    if (ec) return "cannot load the system's CA certificates: " + ec.message();
  } else {
    ctx.load_verify_file(ca_file, ec);
    if (ec) return "cannot load CA file " + ca_file + ": " + ec.message();
  }
  ctx.set_verify_mode(asio::ssl::verify_peer);
  return {};
}

// The name the server's certificate must carry (an IP literal against IP SANs, a name against
// DNS SANs), and SNI for names. Empty on success, else why.
std::string expect_server(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) return "cannot check IP address " + host;
    return {};
  }
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1 ||
      // SSL_set_tlsext_host_name, without its C cast.
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str())) != 1) {
    return "cannot check host name " + host;
  }
  return {};
}

}  // namespace

// Name resolution runs on Asio's resolver thread, which io_context's destructor joins: a DNS
// server that never answers can hold this past the deadline (an IP literal never does).
ClientResponse send_request(const ClientRequest& request) {
  ClientResponse out;
  const Url& url = request.url;
  const std::string where = url.host + ":" + std::to_string(url.port);
  asio::ssl::context tls_context(asio::ssl::context::tls_client);
  if (url.tls) {
    if (auto why = make_tls_context(tls_context, request.ca_file); !why.empty()) {
      out.error = why;
      return out;
    }
  }
  bool finished = false;
  {
    asio::io_context ioc;
    auto exchange = [&](auto& stream) -> asio::awaitable<void> {
      beast::error_code ec;
      bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(request.method), url.target, 11};
      req.set(bhttp::field::host, url.authority);
      req.set(bhttp::field::user_agent, "pix-pubsub/" PIX_VERSION);
      for (const auto& [name, value] : request.headers) req.set(name, value);
      if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
        req.body() = request.body;
        req.prepare_payload();
      }
      co_await bhttp::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.error = "send request to " + where + ": " + ec.message();
        co_return;
      }
      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(request.max_response_bytes);
      co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.error = "read response from " + where + ": " + ec.message();
        co_return;
      }
      auto response = parser.release();
      out.status = static_cast<int>(response.result_int());
      if (auto it = response.find(bhttp::field::retry_after); it != response.end()) {
        out.retry_after = std::string(it->value());
      }
      out.body = std::move(response.body());
    };
    auto run = [&]() -> asio::awaitable<void> {
      auto executor = co_await asio::this_coro::executor;
      beast::error_code ec;
      asio::ip::tcp::resolver resolver(executor);
      const auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                             asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.error = "resolve " + url.host + ": " + ec.message();
        co_return;
      }
      beast::tcp_stream stream(executor);
      stream.expires_after(request.timeout);
      co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.error = "connect to " + where + ": " + ec.message();
        co_return;
      }
      if (!url.tls) {
        co_await exchange(stream);
        beast::error_code ignored;  // the answer is complete; a failed shutdown changes nothing
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        co_return;
      }
      beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), tls_context);
      if (auto why = expect_server(tls.native_handle(), url.host); !why.empty()) {
        out.error = why;
        co_return;
      }
      co_await tls.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        out.error = "TLS handshake with " + where + ": " + ec.message();
        if (const long verify = SSL_get_verify_result(tls.native_handle()); verify != X509_V_OK) {
          out.error += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
        }
        co_return;
      }
      co_await exchange(tls);
      // No close_notify wait: the answer is complete, and a server that never answers one would
      // hold the call until its deadline.
    };
    asio::co_spawn(ioc, run, [&](const std::exception_ptr& e) {
      finished = true;
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        out.error = std::string("request failed: ") + ex.what();
      }
    });
    ioc.run_for(request.timeout);
  }
  if (!finished) {
    out = ClientResponse{};
    out.error = "no answer from " + where + " within " + std::to_string(request.timeout.count()) + " ms";
  }
  return out;
}

}  // namespace pix::http
