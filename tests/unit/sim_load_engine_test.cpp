// The load engine against a small Beast server started in the test on port 0, plain or TLS (with
// certificates made here with OpenSSL's API). Assertions are on counts and on lower bounds of
// latency (the server's injected delay), never on how fast a loaded machine happens to be.
#include "pix/sim/load_engine.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pix/sim/load_report.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using pix::sim::LoadOptions;
using pix::sim::LoadResult;
using pix::sim::RequestSpec;
using pix::sim::TransportError;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

/// @brief How the TestServer answers.
struct Behaviour {
  std::chrono::milliseconds delay{0};  ///< before each answer
  int close_after = 0;                 ///< answers per connection before it is closed (0: never)
};

/// @brief A self-signed certificate and its key, in PEM, made with OpenSSL's API (P-256).
struct TestCertificate {
  std::string cert_pem;
  std::string key_pem;
};

/// A certificate for the subjectAltName `san` (e.g. "IP:127.0.0.1,DNS:localhost"), its own CA.
TestCertificate make_certificate(const std::string& san) {
  static int serial = 0;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) throw std::runtime_error("OpenSSL could not make a key or a certificate");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn = "pix-sim-test-" + std::to_string(serial);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair<int, std::string>{NID_basic_constraints, "critical,CA:TRUE"}, {NID_subject_alt_name, san}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) throw std::runtime_error("bad certificate extension " + value);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
  auto pem = [](auto write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    write(bio.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
  };
  TestCertificate out;
  out.cert_pem = pem([&](BIO* b) { PEM_write_bio_X509(b, cert.get()); });
  out.key_pem = pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
  return out;
}

/// @brief A file with the given content in a fresh temporary directory, removed at the end.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/pix-sim-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    path_ = dir_ + "/file.pem";
    std::ofstream(path_) << content;
  }
  ~TempFile() {
    std::error_code ec;  // a leftover in /tmp is harmless
    std::filesystem::remove_all(dir_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

/// The server side of TLS with `cert`.
std::unique_ptr<ssl::context> server_tls(const TestCertificate& cert) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->use_certificate_chain(asio::buffer(cert.cert_pem));
  ctx->use_private_key(asio::buffer(cert.key_pem), ssl::context::pem);
  return ctx;
}

/// The certificate the TLS tests' server presents (valid for 127.0.0.1 and localhost), made once.
const TestCertificate& server_certificate() {
  static const TestCertificate cert = make_certificate("IP:127.0.0.1,DNS:localhost");
  return cert;
}

/// @brief An HTTP/1.1 server on 127.0.0.1:0 in its own thread, plain or (given a context) TLS.
/// Answers every request 200 with `{"eventId":"ev-<n>"}` after `delay`; a request header
/// `X-Answer-Status: 503` picks another status, `X-Hang` gets no answer at all. `close_after`
/// closes each connection after that many answers, without saying so (as a server's idle timeout
/// does; over TLS without close_notify). Remembers every request's headers.
class TestServer {
 public:
  explicit TestServer(Behaviour behaviour = {}, ssl::context* tls = nullptr)
      : behaviour_(behaviour), tls_(tls), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    io_.stop();
    thread_.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_.load(); }
  int requests() const { return requests_.load(); }
  int handshakes() const { return handshakes_.load(); }  ///< TLS handshakes that succeeded

  /// Fields named `name` with this `value`, over all requests (a field sent twice counts twice).
  int fields(std::string_view name, std::string_view value) const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& request : seen_) {
      for (const auto& [k, v] : request) n += beast::iequals(k, name) && v == value ? 1 : 0;
    }
    return n;
  }
  /// Fields named `name` over all requests, whatever their value.
  int fields(std::string_view name) const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& request : seen_) {
      for (const auto& field : request) n += beast::iequals(field.first, name) ? 1 : 0;
    }
    return n;
  }
  /// The server names (SNI) clients asked for, one per handshake that sent one.
  std::vector<std::string> server_names() const {
    std::lock_guard lock(mutex_);
    return server_names_;
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      ++accepted_;
      asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    if (tls_ == nullptr) {
      co_await serve(socket);
      co_return;
    }
    ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
    if (ec) co_return;
    ++handshakes_;
    if (const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) {
      std::lock_guard lock(mutex_);
      server_names_.emplace_back(sni);
    }
    co_await serve(stream);
  }

  template <typename Stream>
  asio::awaitable<void> serve(Stream& stream) {
    beast::flat_buffer buffer;
    asio::steady_timer timer(io_);
    for (int answered = 0;;) {
      bhttp::request<bhttp::string_body> req;
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, req, kTuple);
      (void)n;
      if (ec) co_return;
      const int id = ++requests_;
      {
        std::lock_guard lock(mutex_);
        auto& fields = seen_.emplace_back();
        for (const auto& f : req) fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
      if (req.count("X-Hang") != 0) {
        timer.expires_after(1h);
        co_await timer.async_wait(kTuple);
        co_return;
      }
      if (behaviour_.delay.count() > 0) {
        timer.expires_after(behaviour_.delay);
        co_await timer.async_wait(kTuple);
      }
      int status = 200;
      if (auto it = req.find("X-Answer-Status"); it != req.end()) status = std::stoi(std::string(it->value()));
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), req.version()};
      res.set(bhttp::field::content_type, "application/json");
      res.body() = R"({"status":"published","eventId":"ev-)" + std::to_string(id) + R"("})";
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await bhttp::async_write(stream, res, kTuple);
      (void)wn;
      if (wec || !res.keep_alive()) co_return;
      if (behaviour_.close_after > 0 && ++answered >= behaviour_.close_after) {
        beast::error_code ignored;  // the test is about the client noticing; how the close went does not matter
        auto& socket = beast::get_lowest_layer(stream);
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
        co_return;
      }
    }
  }

  Behaviour behaviour_;
  ssl::context* tls_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> handshakes_{0};
  mutable std::mutex mutex_;
  std::vector<std::vector<std::pair<std::string, std::string>>> seen_;
  std::vector<std::string> server_names_;
  std::thread thread_;
};

LoadOptions options_for(const TestServer& server) {
  LoadOptions o;
  o.endpoints = {{"127.0.0.1", server.port()}};
  o.duration = 0s;
  o.timeout = 5s;
  return o;
}

/// Sets `stop` once the server has seen `requests` requests (as Ctrl-C would, mid-run).
std::thread stop_after(const TestServer& server, int requests, std::atomic<bool>& stop) {
  return std::thread([&server, requests, &stop] {
    while (server.requests() < requests) std::this_thread::sleep_for(5ms);
    stop = true;
  });
}

pix::sim::RequestSource fixed_body() {
  return [](std::uint64_t) { return RequestSpec{0, "/kafka", R"({"topic":"pix.payment.requested"})", {}, "load"}; };
}

TEST(LoadEngine, ClosedLoopCountsEveryAnswerAndKeepsConnectionsAlive) {
  TestServer server({2ms, 0});
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kClosedLoop;
  o.concurrency = 4;
  o.count = 200;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.sent, 200u);
  EXPECT_EQ(r.completed, 200u);
  EXPECT_EQ(r.status_counts.at(200), 200u);
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_EQ(r.ok(), 200u);
  EXPECT_EQ(server.requests(), 200);
  // One connection per request in flight, reused for all 200.
  EXPECT_EQ(server.accepted(), 4);
  EXPECT_EQ(r.connections_opened, 4u);
  EXPECT_EQ(r.reconnects, 0u);
  EXPECT_EQ(r.latency_ok.count(), 200u);
  EXPECT_GE(r.latency_ok.min(), 2ms);
  EXPECT_EQ(r.send_delay.count(), 0u);
}

TEST(LoadEngine, KeepAnswersCarriesTheEventIdOfEach200) {
  TestServer server;
  auto o = options_for(server);
  o.concurrency = 3;
  o.count = 50;
  o.keep_answers = true;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  ASSERT_EQ(r.answers.size(), 50u);
  std::set<std::string> ids;
  std::set<std::uint64_t> seqs;
  for (const auto& a : r.answers) {
    EXPECT_EQ(a.status, 200);
    EXPECT_FALSE(a.error);
    EXPECT_EQ(a.label, "load");
    EXPECT_EQ(a.event_id.rfind("ev-", 0), 0u) << a.event_id;
    ids.insert(a.event_id);
    seqs.insert(a.seq);
  }
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(seqs.size(), 50u);
  EXPECT_EQ(*seqs.rbegin(), 49u);
}

TEST(LoadEngine, StatusCodesAreCountedApart) {
  TestServer server;
  auto o = options_for(server);
  o.concurrency = 4;
  o.count = 100;
  auto source = [](std::uint64_t seq) {
    RequestSpec spec{0, "/kafka", "{}", {}, "load"};
    if (seq % 10 == 9) spec.headers.emplace_back("X-Answer-Status", "503");
    if (seq % 10 == 4) spec.headers.emplace_back("X-Answer-Status", "422");
    return spec;
  };
  const LoadResult r = pix::sim::run_load(o, source);
  EXPECT_EQ(r.status_counts.at(200), 80u);
  EXPECT_EQ(r.status_counts.at(422), 10u);
  EXPECT_EQ(r.status_counts.at(503), 10u);
  EXPECT_EQ(r.ok(), 80u);
  EXPECT_EQ(r.server_errors(), 10u);
  EXPECT_EQ(r.latency_ok.count(), 80u);
  EXPECT_EQ(r.latency_all.count(), 100u);
}

TEST(LoadEngine, OpenLoopSendsAtTheIntendedRate) {
  TestServer server({1ms, 0});
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 250;
  o.concurrency = 4;
  o.duration = 2s;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  // Exactly the requests due in the 2 s are accounted for: sent, or (if the box was too loaded to
  // send them before the end) unsent.
  EXPECT_EQ(r.sent + r.unsent, 500u);
  EXPECT_EQ(r.completed, r.sent);
  EXPECT_GE(r.sent, 400u);
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_NEAR(r.throughput(), 250.0, 50.0);
  EXPECT_GE(r.latency_ok.min(), 1ms);
  EXPECT_EQ(r.send_delay.count(), r.sent);
}

TEST(LoadEngine, OpenLoopLatencyCountsTheWaitForABusyConnection) {
  // One connection, 100 ms per request, 20 requests per second intended: request k is due at
  // k x 50 ms but can only leave at k x 100 ms, so it waits k x 50 ms, and that wait is latency.
  TestServer server({100ms, 0});
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 20;
  o.concurrency = 1;
  o.max_connections = 1;
  o.count = 10;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 10u);
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_GE(r.latency_ok.min(), 100ms);
  EXPECT_GE(r.latency_ok.max(), 100ms + 9 * 50ms);
  EXPECT_GE(r.send_delay.max(), 9 * 50ms);
}

TEST(LoadEngine, OpenLoopOpensMoreConnectionsRatherThanFallingBehind) {
  // 200/s against 50 ms answers needs about 10 connections in flight; it starts with one.
  TestServer server({50ms, 0});
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 200;
  o.concurrency = 1;
  o.max_connections = 64;
  o.count = 200;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 200u);
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_GE(server.accepted(), 5);
  EXPECT_LE(server.accepted(), 64);
  EXPECT_EQ(r.connections_opened, static_cast<std::uint64_t>(server.accepted()));
  EXPECT_GE(r.latency_ok.min(), 50ms);
}

TEST(LoadEngine, RefusedConnectionsAreCountedPerRequest) {
  LoadOptions o;
  o.endpoints = {{"127.0.0.1", 1}};
  o.duration = 0s;
  o.concurrency = 1;
  o.count = 3;
  LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.sent, 3u);
  EXPECT_EQ(r.completed, 0u);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kConnectRefused)], 3u);
  EXPECT_EQ(r.transport_errors(), 3u);

  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 100;
  o.count = 5;
  r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.sent, 5u);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kConnectRefused)], 5u);
}

TEST(LoadEngine, AConnectionTheServerClosedIsReopenedWithoutAnError) {
  TestServer server({0ms, 1});  // every connection closed after its first answer
  auto o = options_for(server);
  o.concurrency = 2;
  o.count = 20;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 20u);
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_EQ(r.status_counts.at(200), 20u);
  EXPECT_GE(r.reconnects, 1u);
  EXPECT_EQ(r.connections_opened, static_cast<std::uint64_t>(server.accepted()));
  EXPECT_EQ(server.requests(), 20);
}

TEST(LoadEngine, ARequestWithoutAnswerTimesOut) {
  TestServer server;
  auto o = options_for(server);
  o.concurrency = 1;
  o.count = 2;
  o.timeout = 200ms;
  auto source = [](std::uint64_t seq) {
    RequestSpec spec{0, "/kafka", "{}", {}, "load"};
    if (seq == 0) spec.headers.emplace_back("X-Hang", "1");
    return spec;
  };
  const LoadResult r = pix::sim::run_load(o, source);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kTimeout)], 1u);
  EXPECT_EQ(r.status_counts.at(200), 1u);  // the next request went on a fresh connection
  EXPECT_EQ(server.accepted(), 2);
}

TEST(LoadEngine, StopFlagEndsTheRunEarly) {
  TestServer server({5ms, 0});
  auto o = options_for(server);
  o.concurrency = 2;
  o.duration = 60s;
  std::atomic<bool> stop{false};
  o.stop = &stop;
  std::thread stopper = stop_after(server, 20, stop);
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  stopper.join();
  EXPECT_TRUE(r.stopped_early);
  EXPECT_GE(r.completed, 20u);
  EXPECT_EQ(r.completed, r.sent);  // in-flight requests were let finish
  EXPECT_LT(r.elapsed, 30s);
}

TEST(LoadEngine, OpenLoopWithNoLimitRunsUntilStopped) {
  // What `pix-sim payments --duration 0` does (compose's sim profile): no duration, no count.
  TestServer server;
  auto o = options_for(server);
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 500;
  o.duration = 0s;
  o.count = 0;
  std::atomic<bool> stop{false};
  o.stop = &stop;
  std::thread stopper = stop_after(server, 50, stop);
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  stopper.join();
  EXPECT_TRUE(r.stopped_early);
  EXPECT_GE(r.completed, 50u);
  EXPECT_EQ(r.completed, r.sent);
  EXPECT_EQ(r.transport_errors(), 0u);
}

TEST(LoadEngine, TwoThreadsShareTheWorkExactly) {
  TestServer server;
  auto o = options_for(server);
  o.io_threads = 2;
  o.concurrency = 4;
  o.count = 300;
  o.keep_answers = true;
  LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 300u);
  EXPECT_EQ(server.accepted(), 4);
  std::set<std::uint64_t> seqs;
  for (const auto& a : r.answers) seqs.insert(a.seq);
  EXPECT_EQ(seqs.size(), 300u);

  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 500;
  o.count = 250;
  r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.completed, 250u);
  seqs.clear();
  for (const auto& a : r.answers) seqs.insert(a.seq);
  EXPECT_EQ(seqs.size(), 250u);
  EXPECT_EQ(*seqs.rbegin(), 249u);
}

LoadOptions tls_options_for(const TestServer& server, const std::string& ca_file) {
  LoadOptions o = options_for(server);
  o.endpoints.front().tls = true;
  o.ca_file = ca_file;
  return o;
}

TEST(LoadEngineTls, KeepAliveConnectionsCarryTheExtraHeaders) {
  const auto tls = server_tls(server_certificate());
  TestServer server({}, tls.get());
  const TempFile ca(server_certificate().cert_pem);
  auto o = tls_options_for(server, ca.path());
  o.concurrency = 3;
  o.count = 60;
  o.headers = {{"Authorization", "Bearer t0ken"}, {"X-Run", "tls-test"}, {"User-Agent", "bench/1"}};
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_EQ(r.status_counts.at(200), 60u);
  // One TLS connection per request in flight, each handshake done once and reused for all 60.
  EXPECT_EQ(server.accepted(), 3);
  EXPECT_EQ(server.handshakes(), 3);
  EXPECT_EQ(r.connections_opened, 3u);
  EXPECT_EQ(server.fields("Authorization", "Bearer t0ken"), 60);
  EXPECT_EQ(server.fields("X-Run", "tls-test"), 60);
  // The user's User-Agent replaces the engine's rather than going out beside it.
  EXPECT_EQ(server.fields("User-Agent"), 60);
  EXPECT_EQ(server.fields("User-Agent", "bench/1"), 60);
  EXPECT_EQ(server.fields("Content-Type", "application/json"), 60);
  // An IP address is no server name: no SNI for it.
  EXPECT_TRUE(server.server_names().empty());
}

TEST(LoadEngineTls, OpenLoopByHostNameSendsItAsTheServerName) {
  const auto tls = server_tls(server_certificate());
  TestServer server({}, tls.get());
  const TempFile ca(server_certificate().cert_pem);
  auto o = tls_options_for(server, ca.path());
  o.endpoints.front().host = "localhost";  // the certificate names it; resolved to 127.0.0.1
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 200;
  o.concurrency = 2;
  o.count = 40;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_EQ(r.ok(), 40u);
  EXPECT_EQ(r.connections_opened, static_cast<std::uint64_t>(server.handshakes()));
  const auto names = server.server_names();
  ASSERT_FALSE(names.empty());
  for (const auto& n : names) EXPECT_EQ(n, "localhost");
  EXPECT_EQ(server.fields("Host", "localhost:" + std::to_string(server.port())), 40);
}

TEST(LoadEngineTls, AConnectionClosedWithoutCloseNotifyIsReopenedWithoutAnError) {
  const auto tls = server_tls(server_certificate());
  TestServer server({0ms, 1}, tls.get());  // every connection dropped after its first answer
  const TempFile ca(server_certificate().cert_pem);
  auto o = tls_options_for(server, ca.path());
  o.concurrency = 1;
  o.count = 10;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.transport_errors(), 0u);
  EXPECT_EQ(r.status_counts.at(200), 10u);
  EXPECT_GE(r.reconnects, 1u);
  EXPECT_EQ(server.handshakes(), server.accepted());
}

TEST(LoadEngineTls, AServerTheCaDoesNotVouchForGetsTlsErrorsAndNoRequests) {
  const auto tls = server_tls(server_certificate());
  TestServer server({}, tls.get());
  const TempFile other_ca(make_certificate("IP:127.0.0.1,DNS:localhost").cert_pem);
  auto o = tls_options_for(server, other_ca.path());
  o.concurrency = 1;
  o.count = 5;
  LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.sent, 5u);
  EXPECT_EQ(r.ok(), 0u);
  EXPECT_EQ(r.completed, 0u);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kTls)], 5u);
  EXPECT_EQ(r.transport_errors(), 5u);
  EXPECT_EQ(server.requests(), 0);
  EXPECT_EQ(server.handshakes(), 0);

  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 100;
  r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.ok(), 0u);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kTls)], 5u);
  EXPECT_NE(pix::sim::render_table(r).find("tls: 5"), std::string::npos);
}

TEST(LoadEngineTls, ACertificateForAnotherHostIsRefused) {
  const TestCertificate elsewhere = make_certificate("IP:10.20.30.40,DNS:pix.example");
  const auto tls = server_tls(elsewhere);
  TestServer server({}, tls.get());
  const TempFile ca(elsewhere.cert_pem);  // trusted, but it does not name 127.0.0.1
  auto o = tls_options_for(server, ca.path());
  o.concurrency = 1;
  o.count = 3;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.ok(), 0u);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kTls)], 3u);
  EXPECT_EQ(server.requests(), 0);
}

TEST(LoadEngineTls, HttpsToAPlainHttpServerIsATlsError) {
  TestServer server;
  const TempFile ca(server_certificate().cert_pem);
  auto o = tls_options_for(server, ca.path());
  o.concurrency = 1;
  o.count = 2;
  const LoadResult r = pix::sim::run_load(o, fixed_body());
  EXPECT_EQ(r.ok(), 0u);
  EXPECT_EQ(r.errors[static_cast<std::size_t>(TransportError::kTls)], 2u);
}

TEST(LoadEngineTls, ACaFileThatDoesNotLoadIsRejectedUpFront) {
  TestServer server;
  const TempFile not_pem("not a certificate");
  auto o = tls_options_for(server, not_pem.path());
  o.count = 1;
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);
  EXPECT_EQ(server.accepted(), 0);
}

TEST(LoadEngine, RejectsInconsistentOptions) {
  LoadOptions o;
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);  // no endpoint
  o.endpoints = {{"127.0.0.1", 1}};
  o.mode = LoadOptions::Mode::kOpenLoop;
  o.rate = 0;
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);
  o.mode = LoadOptions::Mode::kClosedLoop;
  o.concurrency = 0;
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);
  o.concurrency = 1;
  o.headers = {{"X-Split", "a\r\nX-Injected: b"}};  // would smuggle a second header
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);
  o.headers = {{"Bad Name", "x"}};
  EXPECT_THROW(pix::sim::run_load(o, fixed_body()), std::invalid_argument);
}

TEST(ParseHttpUrl, TakesHostPortAndTarget) {
  std::string error;
  auto u = pix::sim::parse_http_url("http://127.0.0.1:5000/kafka", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->endpoint.host, "127.0.0.1");
  EXPECT_EQ(u->endpoint.port, 5000);
  EXPECT_EQ(u->target, "/kafka");
  u = pix::sim::parse_http_url("http://localhost", error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->endpoint.port, 80);
  EXPECT_EQ(u->target, "/");
  u = pix::sim::parse_http_url("http://[::1]:5001/rabbit?x=1", error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->endpoint.host, "::1");
  EXPECT_EQ(u->endpoint.port, 5001);
  EXPECT_EQ(u->target, "/rabbit?x=1");
  EXPECT_FALSE(u->endpoint.tls);
  for (const char* bad : {"ftp://127.0.0.1/kafka", "127.0.0.1:5000/kafka", "http://:5000/", "http://h:0/",
                          "http://h:70000/", "http://h:12ab/", "https://:5443/", "HTTPS//h/"}) {
    error.clear();
    EXPECT_FALSE(pix::sim::parse_http_url(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(ParseHttpUrl, HttpsMeansTlsOnPort443ByDefault) {
  std::string error;
  auto u = pix::sim::parse_http_url("https://127.0.0.1:5443/kafka", error);
  ASSERT_TRUE(u) << error;
  EXPECT_TRUE(u->endpoint.tls);
  EXPECT_EQ(u->endpoint.host, "127.0.0.1");
  EXPECT_EQ(u->endpoint.port, 5443);
  EXPECT_EQ(u->target, "/kafka");
  u = pix::sim::parse_http_url("https://pix.example", error);
  ASSERT_TRUE(u) << error;
  EXPECT_TRUE(u->endpoint.tls);
  EXPECT_EQ(u->endpoint.port, 443);
  EXPECT_EQ(u->target, "/");
  u = pix::sim::parse_http_url("https://[::1]/rabbit", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->endpoint.host, "::1");
  EXPECT_EQ(u->endpoint.port, 443);
}

TEST(ParseHeaderLine, SplitsNameAndValue) {
  std::string error;
  auto h = pix::sim::parse_header_line("Authorization: Bearer abc.def.ghi", error);
  ASSERT_TRUE(h) << error;
  EXPECT_EQ(h->first, "Authorization");
  EXPECT_EQ(h->second, "Bearer abc.def.ghi");
  h = pix::sim::parse_header_line("X-Trace:\t  a:b:c  ", error);
  ASSERT_TRUE(h) << error;
  EXPECT_EQ(h->first, "X-Trace");
  EXPECT_EQ(h->second, "a:b:c");
  h = pix::sim::parse_header_line("X-Empty:", error);
  ASSERT_TRUE(h) << error;
  EXPECT_EQ(h->second, "");
  for (const char* bad : {"Authorization Bearer abc", ": value", "Two Words: x", "X-Split: a\r\nX-Injected: b"}) {
    error.clear();
    EXPECT_FALSE(pix::sim::parse_header_line(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  error.clear();
  pix::sim::parse_header_line("Authorization Bearer abc", error);
  EXPECT_NE(error.find("':'"), std::string::npos) << error;
}

TEST(ParseDuration, AcceptsTheUsualSuffixes) {
  using pix::sim::parse_duration;
  EXPECT_EQ(parse_duration("10s"), std::chrono::nanoseconds(10s));
  EXPECT_EQ(parse_duration("10"), std::chrono::nanoseconds(10s));
  EXPECT_EQ(parse_duration("500ms"), std::chrono::nanoseconds(500ms));
  EXPECT_EQ(parse_duration("2m"), std::chrono::nanoseconds(120s));
  EXPECT_EQ(parse_duration("1.5s"), std::chrono::nanoseconds(1500ms));
  EXPECT_EQ(parse_duration("250us"), std::chrono::nanoseconds(250us));
  EXPECT_EQ(parse_duration("0"), std::chrono::nanoseconds(0));
  for (const char* bad : {"", "s", "-1s", "10 parsecs", "10x", "abc"}) EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(LoadReport, TableAndJsonCarryTheSameNumbers) {
  LoadResult r;
  r.mode = LoadOptions::Mode::kOpenLoop;
  r.target_rate = 100;
  r.sent = 12;
  r.completed = 11;
  r.status_counts = {{200, 9}, {503, 2}};
  r.errors[static_cast<std::size_t>(TransportError::kTimeout)] = 1;
  r.errors[static_cast<std::size_t>(TransportError::kTls)] = 2;
  r.elapsed = 2s;
  for (int i = 1; i <= 9; ++i) r.latency_ok.record(std::chrono::milliseconds(i));
  r.latency_all = r.latency_ok;
  r.latency_all.record(40ms);
  r.latency_all.record(50ms);

  const std::string table = pix::sim::render_table(r);
  EXPECT_NE(table.find("open loop, 100 req/s"), std::string::npos) << table;
  EXPECT_NE(table.find("503: 2"), std::string::npos) << table;
  EXPECT_NE(table.find("timeout: 1"), std::string::npos) << table;
  EXPECT_NE(table.find("tls: 2"), std::string::npos) << table;
  EXPECT_NE(table.find("p99.9"), std::string::npos) << table;
  EXPECT_NE(table.find("50.00"), std::string::npos) << table;  // max of all answers, in ms

  const auto v = boost::json::parse(pix::sim::render_json(r));
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("mode").as_string(), "open_loop");
  EXPECT_EQ(o.at("sent").to_number<std::uint64_t>(), 12u);
  EXPECT_EQ(o.at("ok").to_number<std::uint64_t>(), 9u);
  EXPECT_EQ(o.at("server_errors").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(o.at("transport_errors").to_number<std::uint64_t>(), 3u);
  EXPECT_EQ(o.at("status").as_object().at("503").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(o.at("errors").as_object().at("timeout").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(o.at("errors").as_object().at("tls").to_number<std::uint64_t>(), 2u);
  EXPECT_DOUBLE_EQ(o.at("throughput").to_number<double>(), 5.5);
  const auto& all = o.at("latency_us").as_object().at("all").as_object();
  EXPECT_DOUBLE_EQ(all.at("max").to_number<double>(), 50000.0);
  EXPECT_EQ(all.at("count").to_number<std::uint64_t>(), 11u);
  EXPECT_GE(all.at("p50").to_number<double>(), 5000.0);
  EXPECT_LE(all.at("p50").to_number<double>(), 6100.0);
}

}  // namespace
