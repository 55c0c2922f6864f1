#include "pix/admin/admin_config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

namespace pix::admin {
namespace {

std::variant<AdminConfig, ParseExit> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "pix-admin");
  return parse_admin_config(static_cast<int>(args.size()), args.data());
}

AdminConfig config(std::vector<const char*> args) {
  auto r = parse(std::move(args));
  if (auto* exit = std::get_if<ParseExit>(&r)) {
    ADD_FAILURE() << "exit " << exit->code << ": " << exit->message;
    return {};
  }
  return std::get<AdminConfig>(r);
}

ParseExit refused(std::vector<const char*> args) {
  auto r = parse(std::move(args));
  if (!std::holds_alternative<ParseExit>(r)) {
    ADD_FAILURE() << "accepted";
    return {};
  }
  return std::get<ParseExit>(r);
}

TEST(AdminConfig, TopologyDefaultsAreTheLocalBrokersAndTheProductionNames) {
  const auto c = config({"topology"});
  ASSERT_EQ(c.command, Command::kTopology);
  const auto& t = c.topology;
  EXPECT_EQ(t.kafka.bootstrap, "127.0.0.1:9092");
  EXPECT_EQ(t.partitions, 3);
  EXPECT_EQ(t.replication_factor, -1);
  EXPECT_TRUE(t.topic_prefix.empty());
  EXPECT_EQ(t.rabbit_topology.exchange, "pix");
  EXPECT_TRUE(t.rabbit_topology.queue_prefix.empty());
  ASSERT_TRUE(t.rabbit.has_value());
  EXPECT_EQ(t.rabbit->port, 5672);
  EXPECT_FALSE(t.remove);
  EXPECT_FALSE(t.kafka_acls);
}

TEST(AdminConfig, TopologyFlagsAndEnvironment) {
  ::setenv("PIX_TOPIC_PARTITIONS", "6", 1);
  const auto from_env = config({"topology", "--skip-rabbit"});
  ::unsetenv("PIX_TOPIC_PARTITIONS");
  EXPECT_EQ(from_env.topology.partitions, 6);
  EXPECT_FALSE(from_env.topology.rabbit.has_value()) << "--skip-rabbit resolves no URL";

  const auto c = config({"topology", "--partitions", "12", "--replication-factor", "3", "--topic-prefix", "staging.",
                         "--exchange", "pix2", "--queue-prefix", "t-", "--delete", "--kafka-acls", "--kafka-bootstrap",
                         "k1:9092,k2:9092", "--rabbit-url", "amqp://u:p@rabbit:5673/v"});
  const auto& t = c.topology;
  EXPECT_EQ(t.partitions, 12);
  EXPECT_EQ(t.replication_factor, 3);
  EXPECT_EQ(t.topic_prefix, "staging.");
  EXPECT_EQ(t.rabbit_topology.exchange, "pix2");
  EXPECT_EQ(t.rabbit_topology.queue_prefix, "t-");
  EXPECT_TRUE(t.remove);
  EXPECT_TRUE(t.kafka_acls);
  EXPECT_EQ(t.kafka.bootstrap, "k1:9092,k2:9092");
  ASSERT_TRUE(t.rabbit.has_value());
  EXPECT_EQ(t.rabbit->host, "rabbit");
  EXPECT_EQ(t.rabbit->port, 5673);
  EXPECT_EQ(t.rabbit->vhost, "v");
}

TEST(AdminConfig, BadBrokerFlagsStopTopologyBeforeItChangesAnything) {
  auto exit = refused({"topology", "--kafka-option", "novalue"});
  EXPECT_EQ(exit.code, 2);
  EXPECT_NE(exit.message.find("--kafka-option"), std::string::npos) << exit.message;
  exit = refused({"topology", "--rabbit-url", "http://rabbit/"});
  EXPECT_EQ(exit.code, 2);
  EXPECT_NE(exit.message.find("amqp"), std::string::npos) << exit.message;
  // Each side is checked only when it is used.
  EXPECT_EQ(config({"topology", "--skip-kafka", "--kafka-option", "novalue"}).command, Command::kTopology);
  exit = refused({"topology", "--partitions", "0"});
  EXPECT_NE(exit.code, 0);
  EXPECT_NE(exit.message.find("--partitions"), std::string::npos) << exit.message;
}

TEST(AdminConfig, ReportAndVerifyAudit) {
  const auto report = config({"report", "--audit-db", "/tmp/a.db", "--ledger-db", "/tmp/l.db", "--json"});
  ASSERT_EQ(report.command, Command::kReport);
  EXPECT_EQ(report.report.audit_db, "/tmp/a.db");
  EXPECT_EQ(report.report.ledger_db, "/tmp/l.db");
  EXPECT_TRUE(report.report.json);

  const auto plain = config({"verify-audit"});
  ASSERT_EQ(plain.command, Command::kVerifyAudit);
  EXPECT_EQ(plain.verify_audit.audit_db, "audit.db");
  EXPECT_FALSE(plain.verify_audit.anchor.has_value()) << "the anchor is read only with --anchor-kafka";

  const auto anchored = config({"verify-audit", "--anchor-kafka", "--topic-prefix", "staging."});
  ASSERT_TRUE(anchored.verify_audit.anchor.has_value());
  EXPECT_EQ(anchored.verify_audit.anchor->bootstrap, "127.0.0.1:9092");
  EXPECT_EQ(anchored.verify_audit.anchor_topic, "staging.pix.audit.log");
  EXPECT_EQ(refused({"verify-audit", "--anchor-kafka", "--kafka-option", "novalue"}).code, 2);
}

TEST(AdminConfig, DecisionKeyNeedsAKnownStageAndAFile) {
  const auto c = config({"decision-key", "--stage", "settlement", "--out", "/tmp/k.json"});
  ASSERT_EQ(c.command, Command::kDecisionKey);
  EXPECT_EQ(c.decision_key.stage, "settlement");
  EXPECT_EQ(c.decision_key.out, "/tmp/k.json");
  auto exit = refused({"decision-key", "--stage", "notifier", "--out", "/tmp/k.json"});
  EXPECT_NE(exit.message.find("--stage"), std::string::npos) << exit.message;
  exit = refused({"decision-key", "--stage", "antifraud"});
  EXPECT_NE(exit.message.find("--out"), std::string::npos) << exit.message;
}

TEST(AdminConfig, TraceChecksTheJaegerUrlAndTheLookback) {
  const auto c = config({"trace", "e2e-1", "--jaeger", "http://jaeger:16686/", "--lookback", "2d", "--width", "40"});
  ASSERT_EQ(c.command, Command::kTrace);
  EXPECT_EQ(c.trace.id, "e2e-1");
  EXPECT_EQ(c.trace.jaeger, "http://jaeger:16686/");
  EXPECT_EQ(c.trace.lookback, "2d");
  EXPECT_EQ(c.trace.width, 40);
  EXPECT_NE(refused({"trace", "x", "--jaeger", "ftp://j/"}).message.find("--jaeger"), std::string::npos);
  EXPECT_NE(refused({"trace", "x", "--jaeger", "http://j/?q=1"}).message.find("no query"), std::string::npos);
  EXPECT_NE(refused({"trace", "x", "--lookback", "forever"}).message.find("lookback"), std::string::npos);
  EXPECT_NE(refused({"trace"}).code, 0);
}

TEST(AdminConfig, NoSubcommandOrHelp) {
  EXPECT_NE(refused({}).code, 0);
  const auto help = refused({"--help"});
  EXPECT_EQ(help.code, 0);
  for (const char* text : {"topology", "report", "verify-audit", "decision-key", "trace"}) {
    EXPECT_NE(help.message.find(text), std::string::npos) << text;
  }
  const auto topology_help = refused({"topology", "--help"});
  EXPECT_EQ(topology_help.code, 0);
  EXPECT_NE(topology_help.message.find("PIX_TOPIC_PARTITIONS"), std::string::npos) << topology_help.message;
}

}  // namespace
}  // namespace pix::admin
