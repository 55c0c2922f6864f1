#include "pix/service/admin_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <thread>

namespace pix::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

struct AdminServer::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  telemetry::Registry& metrics;
  ReadyCheck ready;
  std::thread thread;

  Impl(telemetry::Registry& m, ReadyCheck r) : metrics(m), ready(std::move(r)) {}

  bhttp::response<bhttp::string_body> answer(const bhttp::request<bhttp::string_body>& req) {
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, "application/json");
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
      res.result(bhttp::status::method_not_allowed);
      res.set(bhttp::field::allow, "GET, HEAD");
      res.body() = R"({"status":405,"title":"Method not allowed"})";
    } else if (path == "/healthz") {
      res.body() = R"({"status":"alive"})";
    } else if (path == "/readyz") {
      auto [ok, detail] = ready();
      boost::json::object o;
      o["status"] = ok ? "ready" : "unavailable";
      o["detail"] = detail;
      res.result(ok ? bhttp::status::ok : bhttp::status::service_unavailable);
      res.body() = boost::json::serialize(o);
    } else if (path == "/metrics") {
      res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = metrics.render();
    } else {
      res.result(bhttp::status::not_found);
      res.body() = R"({"status":404,"title":"No such resource"})";
    }
    res.prepare_payload();
    return res;
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      stream.expires_after(std::chrono::seconds(30));
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
      (void)n;
      if (ec) break;
      auto res = answer(req);
      res.keep_alive(req.keep_alive());
      auto [wec, wn] = co_await bhttp::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      (void)wn;
      if (wec || !req.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }
};

AdminServer::AdminServer(const std::string& address, std::uint16_t port, telemetry::Registry& metrics, ReadyCheck ready)
    : impl_(std::make_unique<Impl>(metrics, std::move(ready))) {
  const tcp::endpoint ep(asio::ip::make_address(address), port);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

AdminServer::~AdminServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t AdminServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace pix::service
