// Connection deadlines of the gateway, over raw sockets: an idle keep-alive connection is closed
// after --idle-timeout-s, a client that stalls half-way through a request is cut off, and a
// connection kept busy stays open however long it lives.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/broker_control.hpp"
#include "support/http_client.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }

  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }

  /// Reads until the peer closes (true) or `limit` passes (false); what arrived is in `received`.
  bool closed_by_peer_within(std::chrono::milliseconds limit, std::string* received = nullptr) {
    const auto end = Clock::now() + limit;
    char buf[4096];
    while (Clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 1))) <= 0) continue;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;  // EOF or reset: the server closed it
      if (received) received->append(buf, static_cast<std::size_t>(n));
    }
    return false;
  }

  /// Reads one complete response to a request (headers plus Content-Length body).
  std::string read_response(std::chrono::milliseconds limit) {
    std::string in;
    const auto end = Clock::now() + limit;
    char buf[4096];
    while (Clock::now() < end) {
      const auto header_end = in.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        const auto cl = in.find("Content-Length: ");
        const std::size_t length = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
        if (in.size() >= header_end + 4 + length) return in;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    return in;
  }

 private:
  int fd_;
  bool connected_ = false;
};

const std::string kHealthz = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

GatewayProcess gateway_with_idle_timeout(int seconds) {
  return GatewayProcess(
      {"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap(), "--idle-timeout-s", std::to_string(seconds)});
}

TEST(GatewayConnections, IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  GatewayProcess gw = gateway_with_idle_timeout(1);
  RawConnection conn(gw.port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.send(kHealthz));
  const std::string first = conn.read_response(5s);
  ASSERT_NE(first.find("HTTP/1.1 200"), std::string::npos) << first;
  // Kept alive after the answer, then closed by the server once idle for a second (the sweeper
  // runs every 100 ms; generous bound for a loaded machine).
  EXPECT_TRUE(conn.closed_by_peer_within(15s)) << "an idle keep-alive connection was never closed";
}

TEST(GatewayConnections, ClientStallingHalfwayThroughARequestIsCutOff) {
  GatewayProcess gw = gateway_with_idle_timeout(1);
  RawConnection conn(gw.port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.send("POST /kafka HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"));
  std::string received;
  EXPECT_TRUE(conn.closed_by_peer_within(15s, &received)) << "a stalled half request held its connection";
  EXPECT_EQ(received.find("HTTP/1.1 200"), std::string::npos) << received;
  // The server is still serving everyone else.
  HttpClient c(gw.port());
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST(GatewayConnections, BusyConnectionOutlivesTheIdleTimeout) {
  GatewayProcess gw = gateway_with_idle_timeout(1);
  RawConnection conn(gw.port());
  ASSERT_TRUE(conn.connected());
  // One request every 300 ms for three idle timeouts: the deadline restarts with each request.
  const auto until = Clock::now() + 3s;
  int answered = 0;
  while (Clock::now() < until) {
    ASSERT_TRUE(conn.send(kHealthz)) << "the connection was closed after " << answered << " answers";
    const std::string r = conn.read_response(5s);
    ASSERT_NE(r.find("HTTP/1.1 200"), std::string::npos) << "answer " << answered << ": " << r;
    ++answered;
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_GE(answered, 5);
}

}  // namespace
}  // namespace pix::test
