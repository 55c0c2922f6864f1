#include "support/broker_control.hpp"

#include <signal.h>

#include <cstdlib>
#include <fstream>

namespace pix::test {

int local_broker_pid(const std::string& broker) {
  const char* state = std::getenv("PIX_STATE");
  const std::string dir = state && *state ? state : std::string(PIX_SOURCE_DIR) + "/.local";
  const std::string file = broker == "kafka" ? dir + "/kafka/kafka.pid" : dir + "/rabbitmq/rabbitmq.pid";
  std::ifstream in(file);
  int pid = -1;
  if (!(in >> pid)) return -1;
  return pid;
}

FrozenProcess::FrozenProcess(int pid) : pid_(pid) {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

FrozenProcess::~FrozenProcess() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

}  // namespace pix::test
