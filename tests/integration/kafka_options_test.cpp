// --kafka-option reaches librdkafka in every program that talks to Kafka, not only pix-api: the
// way to configure SASL and TLS for the saga stages, pix-admin and pix-tail.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "pix/util/random_id.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs a command line with stderr folded into stdout; `timeout` bounds programs that would wait.
CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen(("timeout 60 " + command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) r.output += buf.data();
  const int raw = ::pclose(p);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

TEST(KafkaOptions, AnUnknownPropertyStopsEveryProgramWithLibrdkafkasOwnComplaint) {
  const std::string bad = " --kafka-option no.such.property=1";
  const std::string db = "/tmp/pix-kopt-" + util::random_hex(8) + ".db";
  for (const std::string& command :
       {program_path("pix-settlement") + " --allow-unsigned --admin-port 0 --db " + db + bad + " --kafka-bootstrap " +
            kafka_bootstrap(),
        program_path("pix-antifraud") + " --allow-unsigned --admin-port 0" + bad + " --kafka-bootstrap " +
            kafka_bootstrap(),
        program_path("pix-admin") + " topology --skip-rabbit --topic-prefix kopt." + bad + " --kafka-bootstrap " +
            kafka_bootstrap(),
        program_path("pix-tail") + " --max 1 kafka" + bad + " --kafka-bootstrap " + kafka_bootstrap()}) {
    const CommandResult r = run(command);
    EXPECT_NE(r.status, 0) << command << "\n" << r.output;
    EXPECT_NE(r.output.find("no.such.property"), std::string::npos) << command << "\n" << r.output;
  }
  std::remove(db.c_str());
}

TEST(KafkaOptions, AValueWithoutEqualsIsAUsageError) {
  const CommandResult r = run(program_path("pix-notifier") + " --admin-port 0 --kafka-option compression.type");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--kafka-option expects key=value"), std::string::npos) << r.output;
}

TEST(KafkaOptions, AValidPropertyIsAppliedAndTheProgramWorks) {
  const std::string prefix = "kopt" + util::random_hex(6) + ".";
  const std::string admin = program_path("pix-admin") + " topology --skip-rabbit --topic-prefix " + prefix +
                            " --kafka-bootstrap " + kafka_bootstrap() + " --kafka-option socket.timeout.ms=20000";
  const CommandResult created = run(admin);
  EXPECT_EQ(created.status, 0) << created.output;
  EXPECT_NE(created.output.find(prefix + "pix.payment.requested"), std::string::npos) << created.output;
  const CommandResult removed = run(admin + " --delete");
  EXPECT_EQ(removed.status, 0) << removed.output;
}

}  // namespace
}  // namespace pix::test
