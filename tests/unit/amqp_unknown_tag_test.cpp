// A broker that acks a delivery tag the publisher never sent: the two disagree on what was
// confirmed, so nothing outstanding may be answered 200. A fake AMQP 0-9-1 broker (just enough
// of the handshake for rabbitmq-c's login) sends that ack; a real RabbitMQ never would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <string>
#include <thread>

#include "amqp_wire.hpp"
#include "pix/amqp/confirm_publisher.hpp"
#include "pix/amqp/url.hpp"
#include "pix/util/invariant.hpp"

namespace pix::amqp {
namespace {

using namespace std::chrono_literals;

using test::wire::be16;
using test::wire::be32;
using test::wire::be64;
using test::wire::longstr;
using test::wire::method_frame;

struct Frame {
  std::uint8_t type = 0;
  std::uint16_t channel = 0;
  std::string payload;
  std::uint16_t cls() const { return static_cast<std::uint16_t>((payload[0] & 0xff) << 8 | (payload[1] & 0xff)); }
  std::uint16_t method() const { return static_cast<std::uint16_t>((payload[2] & 0xff) << 8 | (payload[3] & 0xff)); }
};

/// One client, one connection: the handshake, then an ack for tag 7 after the first publish.
class FakeBroker {
 public:
  FakeBroker() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeBroker() {
    stop_ = true;
    thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  FakeBroker(const FakeBroker&) = delete;
  FakeBroker& operator=(const FakeBroker&) = delete;

  std::uint16_t port() const { return port_; }
  /// The publisher closed (or tore down) the connection after the bogus ack.
  bool dropped() const { return dropped_.load(); }
  std::string failure() const { return failure_; }

 private:
  bool read_exact(int fd, char* out, std::size_t n) {
    std::size_t got = 0;
    while (got < n && !stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const auto r = ::read(fd, out + got, n - got);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return got == n;
  }
  bool read_frame(int fd, Frame& f) {
    char header[7];
    if (!read_exact(fd, header, 7)) return false;
    f.type = static_cast<std::uint8_t>(header[0]);
    f.channel = static_cast<std::uint16_t>((header[1] & 0xff) << 8 | (header[2] & 0xff));
    const std::uint32_t size = static_cast<std::uint32_t>((header[3] & 0xff) << 24 | (header[4] & 0xff) << 16 |
                                                          (header[5] & 0xff) << 8 | (header[6] & 0xff));
    f.payload.assign(size + 1, '\0');
    return read_exact(fd, f.payload.data(), size + 1);  // payload and the frame-end octet
  }
  /// The next method frame of class/method, skipping heartbeats; false on anything else.
  bool expect(int fd, std::uint16_t cls, std::uint16_t method) {
    Frame f;
    while (read_frame(fd, f)) {
      if (f.type == 8) continue;
      if (f.type == 1 && f.cls() == cls && f.method() == method) return true;
      failure_ = "unexpected frame type " + std::to_string(f.type) + " method " + std::to_string(f.cls()) + "." +
                 std::to_string(f.method());
      return false;
    }
    failure_ = "connection ended while waiting for " + std::to_string(cls) + "." + std::to_string(method);
    return false;
  }
  void send(int fd, const std::string& bytes) {
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  void serve() {
    int fd = -1;
    while (!stop_ && fd < 0) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) fd = ::accept(listen_fd_, nullptr, nullptr);
    }
    if (fd < 0) return;
    ::close(listen_fd_);  // one connection only: a reconnect attempt is refused
    listen_fd_ = -1;
    char protocol[8];
    if (!read_exact(fd, protocol, 8)) return;
    // connection.start: version 0-9, no server properties, PLAIN, en_US.
    send(fd, method_frame(0, 10, 10, std::string("\x00\x09", 2) + be32(0) + longstr("PLAIN") + longstr("en_US")));
    if (!expect(fd, 10, 11)) return;                                         // start-ok
    send(fd, method_frame(0, 10, 30, be16(2047) + be32(131072) + be16(0)));  // tune
    if (!expect(fd, 10, 31) || !expect(fd, 10, 40)) return;                  // tune-ok, open
    send(fd, method_frame(0, 10, 41, std::string(1, '\0')));                 // open-ok
    if (!expect(fd, 20, 10)) return;                                         // channel.open (1)
    send(fd, method_frame(1, 20, 11, be32(0)));                              // open-ok
    if (!expect(fd, 85, 10)) return;                                         // confirm.select
    send(fd, method_frame(1, 85, 11, ""));                                   // select-ok
    if (!expect(fd, 20, 10)) return;                                         // channel.open (2)
    send(fd, method_frame(2, 20, 11, be32(0)));
    if (!expect(fd, 60, 40)) return;  // the first basic.publish
    // basic.ack for delivery tag 7: only tag 1 was ever sent.
    send(fd, method_frame(1, 60, 80, be64(7) + std::string(1, '\0')));
    Frame f;
    while (read_frame(fd, f)) {
      if (f.type == 1 && f.cls() == 10 && f.method() == 50) break;  // connection.close
    }
    dropped_ = true;
    ::close(fd);
  }

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> dropped_{false};
  std::string failure_;
  std::thread thread_;
};

TEST(AmqpUnknownDeliveryTag, DropsTheConnectionAndAnswersEveryUnconfirmedEventMayExist) {
  FakeBroker broker;
  ConfirmPublisher::Options o;
  o.url = *parse_amqp_url("amqp://guest:guest@127.0.0.1:" + std::to_string(broker.port()) + "/").url;
  o.confirm_timeout = 30s;  // far away: the answer must come from the bogus ack, not a timeout
  o.heartbeat = 0s;
  ConfirmPublisher publisher(o);
  ASSERT_TRUE(publisher.wait_connected(5s)) << broker.failure();
  const auto violations_before = util::invariant_violations();

  broker::OutboundEvent ev;
  ev.topic = "pix.payment.requested";
  ev.id = "evt-1";
  ev.payload = "{}";
  std::promise<broker::PublishResult> verdict;
  publisher.publish(ev, [&](broker::PublishResult r) { verdict.set_value(std::move(r)); });
  auto answer = verdict.get_future();
  ASSERT_EQ(answer.wait_for(10s), std::future_status::ready) << "no verdict: " << broker.failure();
  const auto r = answer.get();
  EXPECT_EQ(r.status, broker::PublishStatus::kTimedOut) << "an ack for a tag never sent confirmed the event";
  EXPECT_NE(r.detail.find("never sent"), std::string::npos) << r.detail;
  EXPECT_EQ(util::invariant_violations(), violations_before + 1) << "the broken invariant was not counted";
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!broker.dropped() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(broker.dropped()) << "the publisher kept a connection whose confirms cannot be trusted";
}

}  // namespace
}  // namespace pix::amqp
