#pragma once
// Runs the real pix-api binary as a child process for black-box tests.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace pix::test {

/// Address of the test brokers, from the environment the test scripts set.
std::string kafka_bootstrap();  // PIX_KAFKA_BOOTSTRAP, default 127.0.0.1:9092
std::string rabbit_url();       // PIX_RABBIT_URL, default amqp://guest:guest@127.0.0.1:5672/

class GatewayProcess {
 public:
  /// Starts `pix-api --port 0 <args>` and waits (bounded) for its "listening" line.
  explicit GatewayProcess(std::vector<std::string> args);
  ~GatewayProcess();  // SIGKILLs a child still running

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  /// Waits for the child to exit; returns its exit status, or -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);
  /// Everything the child wrote to stderr so far (its logs).
  std::string logs();

 private:
  void pump(std::chrono::milliseconds timeout);
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  std::uint16_t port_ = 0;
  std::string logs_;
};

/// Poll `pred` until true or `timeout`; returns the last value.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

}  // namespace pix::test
