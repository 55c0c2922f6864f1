// pix-admin verify-audit --anchor-kafka against the real Kafka: the entries the auditor announced
// on pix.audit.log anchor the chain, so a store whose tail was cut off no longer passes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "pix/audit/audit_store.hpp"
#include "pix/domain/topics.hpp"
#include "pix/kafka/admin.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/saga/handlers.hpp"
#include "pix/storage/sqlite.hpp"
#include "pix/util/random_id.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs a command line with stderr folded into stdout; `timeout` bounds a program that would hang.
CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen(("timeout 90 " + command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) r.output += buf.data();
  const int raw = ::pclose(p);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// A pix.audit.log of its own (three partitions, like the real one) and an audit store in a
// directory of its own; both removed at the end.
class AuditAnchorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = "anchor" + util::random_hex(4) + ".";
    topic_ = prefix_ + std::string(domain::topic_name(domain::Topic::kAuditLog));
    kafka::TopicSpec spec;
    spec.name = topic_;
    spec.partitions = 3;
    for (const auto& o : kafka::create_topics(kafka_bootstrap(), {spec}, 30s)) {
      ASSERT_TRUE(o.ok) << o.name << ": " << o.status;
    }
    dir_ = (fs::temp_directory_path() / ("pix-anchor-" + util::random_hex(4))).string();
    fs::create_directories(dir_);
  }

  void TearDown() override {
    kafka::delete_topics(kafka_bootstrap(), {topic_}, 30s);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string db() const { return dir_ + "/audit.db"; }

  std::string verify_command(const std::string& bootstrap) const {
    return program_path("pix-admin") + " verify-audit --audit-db " + db() + " --anchor-kafka --kafka-bootstrap " +
           bootstrap + " --topic-prefix " + prefix_;
  }

  /// Appends `n` events through the auditor and publishes each announcement as its stage would
  /// (the prefixed topic, acknowledged by all in-sync replicas) before the next.
  void audit_and_announce(int n) {
    auto store = std::make_shared<audit::AuditStore>(db());
    saga::Auditor auditor(store);
    kafka::ProducerOptions po;
    po.bootstrap_servers = kafka_bootstrap();
    po.client_id = "audit-anchor-test";
    kafka::KafkaPublisher publisher(po);
    // Until its first metadata round trip the publisher answers kBrokerUnavailable at once.
    ASSERT_TRUE(eventually([&] { return publisher.broker_up(); }, 10s));
    for (int i = 1; i <= n; ++i) {
      const std::string tx = "tx-" + std::to_string(i);
      broker::OutboundEvent event =
          auditor.audit("evt-" + std::to_string(i), "kafka:" + prefix_ + "pix.payment.requested",
                        R"({"transactionId":")" + tx + R"("})", "");
      event.topic = prefix_ + event.topic;
      std::promise<broker::PublishResult> acked;
      publisher.publish(std::move(event), [&acked](broker::PublishResult r) { acked.set_value(std::move(r)); });
      auto done = acked.get_future();
      ASSERT_EQ(done.wait_for(30s), std::future_status::ready);
      const broker::PublishResult r = done.get();
      ASSERT_EQ(r.status, broker::PublishStatus::kAcked) << r.detail;
    }
    EXPECT_EQ(publisher.drain(10s), 0u);
  }

  std::string prefix_;
  std::string topic_;
  std::string dir_;
};

TEST_F(AuditAnchorTest, ATruncatedTailFailsVerificationAgainstTheAnnouncedEntries) {
  // Nothing announced yet: verified as a file, and said so.
  { audit::AuditStore store(db()); }
  const CommandResult before = run(verify_command(kafka_bootstrap()));
  EXPECT_EQ(before.status, 0) << before.output;
  EXPECT_NE(before.output.find("no anchor yet"), std::string::npos) << before.output;

  ASSERT_NO_FATAL_FAILURE(audit_and_announce(5));
  const CommandResult intact = run(verify_command(kafka_bootstrap()));
  EXPECT_EQ(intact.status, 0) << intact.output;
  EXPECT_NE(intact.output.find("audit chain OK: 5 entries, anchored"), std::string::npos) << intact.output;
  EXPECT_NE(intact.output.find("the entry at seq 5 is the one " + topic_), std::string::npos) << intact.output;

  // Cut the last two entries off, as someone with write access to the file could: what is left
  // is a valid chain, and verify-audit without the anchor still passes it.
  {
    storage::Database raw(db());
    raw.exec("DROP TRIGGER entries_append_only_update; DROP TRIGGER entries_append_only_delete;");
    raw.exec("DELETE FROM entries WHERE seq > 3");
    ASSERT_EQ(raw.changes(), 2);
  }
  const CommandResult unanchored = run(program_path("pix-admin") + " verify-audit --audit-db " + db());
  EXPECT_EQ(unanchored.status, 0) << unanchored.output;

  const CommandResult cut = run(verify_command(kafka_bootstrap()));
  EXPECT_EQ(cut.status, 3) << cut.output;
  EXPECT_NE(cut.output.find("TRUNCATED: the chain ends at seq 3 but " + topic_), std::string::npos) << cut.output;
  EXPECT_NE(cut.output.find("announced seq 5"), std::string::npos) << cut.output;
}

TEST_F(AuditAnchorTest, AnAnchorThatCannotBeReadIsNeitherOkNorBroken) {
  audit::AuditStore store(db());
  store.append("evt-1", "kafka:x", "{}", 1);

  // No such topic (another prefix): could not check, exit 1, naming the topic.
  const std::string missing = "anchor" + util::random_hex(4) + ".";
  const CommandResult unknown =
      run(program_path("pix-admin") + " verify-audit --audit-db " + db() + " --anchor-kafka --kafka-bootstrap " +
          kafka_bootstrap() + " --topic-prefix " + missing);
  EXPECT_EQ(unknown.status, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("cannot read the audit chain's anchor on " + missing + "pix.audit.log"),
            std::string::npos)
      << unknown.output;

  // No broker there: the same, once the reader's timeout is out.
  const CommandResult unreachable = run(verify_command("127.0.0.1:1"));
  EXPECT_EQ(unreachable.status, 1) << unreachable.output;
  EXPECT_NE(unreachable.output.find("cannot read the audit chain's anchor on " + topic_), std::string::npos)
      << unreachable.output;
}

}  // namespace
}  // namespace pix::test
