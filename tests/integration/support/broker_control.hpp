#pragma once
// Freezes and thaws the local brokers (SIGSTOP/SIGCONT) to test what a silent broker does.
// Only for brokers the test scripts own: callers check PIX_TEST_BROKER_CONTROL first.

#include <string>

namespace pix::test {

/// Pid of a local broker from the scripts' pid files ("kafka" or "rabbitmq"); -1 if unknown.
int local_broker_pid(const std::string& broker);

/// SIGSTOPs the process for its lifetime; SIGCONTs it when destroyed (also on a failed assertion).
class FrozenProcess {
 public:
  explicit FrozenProcess(int pid);
  ~FrozenProcess();
  FrozenProcess(const FrozenProcess&) = delete;
  FrozenProcess& operator=(const FrozenProcess&) = delete;

 private:
  int pid_;
};

}  // namespace pix::test
