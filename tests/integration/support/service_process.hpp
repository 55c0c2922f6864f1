#pragma once
// Runs the real pix-api binary as a child process for black-box tests.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace pix::test {

/// Address of the test brokers, from the environment the test scripts set.
std::string kafka_bootstrap();  // PIX_KAFKA_BOOTSTRAP, default 127.0.0.1:9092
std::string rabbit_url();       // PIX_RABBIT_URL, default amqp://guest:guest@127.0.0.1:5672/

/// Path of one of our programs (pix-api, pix-settlement...), next to pix-api in the build tree.
std::string program_path(const std::string& name);

/// @brief One of our programs run as a child process, whose log tells the port it bound.
class ServiceProcess {
 public:
  /// Starts `binary args...`, with `env` added to (or replacing in) the test's environment, and
  /// waits (bounded) until its log matches `port_pattern`, whose first group is the port.
  ServiceProcess(const std::string& binary, std::vector<std::string> args, const std::string& port_pattern,
                 const std::map<std::string, std::string>& env = {});
  virtual ~ServiceProcess();  // SIGKILLs a child still running
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  /// Waits for the child to exit; returns its exit status, or -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);
  /// SIGKILL now, as a crash would, and reap it.
  void kill_hard();
  /// Everything the child wrote to stderr so far (its logs).
  std::string logs();

 private:
  void pump(std::chrono::milliseconds timeout);
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  std::uint16_t port_ = 0;
  std::string logs_;
};

/// @brief pix-api with `--port 0 --log-format text <args>`.
class GatewayProcess : public ServiceProcess {
 public:
  explicit GatewayProcess(std::vector<std::string> args, const std::map<std::string, std::string>& env = {});
};

/// @brief A saga stage (`pix-antifraud`...) with `--admin-port 0 --log-format text <args>`; port()
/// is its admin endpoint.
class StageProcess : public ServiceProcess {
 public:
  StageProcess(const std::string& program, std::vector<std::string> args,
               const std::map<std::string, std::string>& env = {});
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
