#include "pix/saga/stage_config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "temp_db_file.hpp"

namespace pix::saga {
namespace {

using namespace std::chrono_literals;

std::variant<StageConfig, ParseExit> parse(StageKind kind, std::vector<const char*> args) {
  args.insert(args.begin(), "pix-stage");
  return parse_stage_config(kind, static_cast<int>(args.size()), args.data());
}

StageConfig config(StageKind kind, std::vector<const char*> args = {}) {
  auto r = parse(kind, std::move(args));
  if (auto* exit = std::get_if<ParseExit>(&r)) {
    ADD_FAILURE() << "exit " << exit->code << ": " << exit->message;
    return {};
  }
  return std::get<StageConfig>(r);
}

ParseExit refused(StageKind kind, std::vector<const char*> args) {
  auto r = parse(kind, std::move(args));
  if (!std::holds_alternative<ParseExit>(r)) {
    ADD_FAILURE() << "accepted";
    return {};
  }
  return std::get<ParseExit>(r);
}

TEST(StageConfig, EachStageHasItsNamePortGroupAndStoreByDefault) {
  struct Expected {
    StageKind kind;
    const char* name;
    int port;
    const char* db;
    bool rabbit;
  };
  for (const auto& e : {Expected{StageKind::kAntifraud, "antifraud", 9101, "", false},
                        Expected{StageKind::kSettlement, "settlement", 9102, "ledger.db", false},
                        Expected{StageKind::kNotifier, "notifier", 9103, "", true},
                        Expected{StageKind::kAuditor, "auditor", 9104, "audit.db", true}}) {
    const auto c = config(e.kind);
    EXPECT_EQ(c.kind, e.kind);
    EXPECT_EQ(c.name, e.name);
    EXPECT_EQ(c.group, e.name);
    EXPECT_EQ(c.admin_port, e.port);
    EXPECT_EQ(c.admin_listen, "127.0.0.1");
    EXPECT_EQ(c.db, e.db);
    EXPECT_EQ(c.rabbit.has_value(), e.rabbit) << e.name;
    EXPECT_EQ(c.drain_timeout, 10000ms);
    EXPECT_EQ(c.kafka.bootstrap, "127.0.0.1:9092");
    EXPECT_TRUE(c.topic_prefix.empty());
    EXPECT_EQ(c.log_level, "info");
    EXPECT_EQ(c.log_format, "json");
  }
  EXPECT_EQ(config(StageKind::kSettlement).fund.size(), 5u);
  EXPECT_EQ(config(StageKind::kNotifier).exchange, "pix");
  EXPECT_EQ(config(StageKind::kAuditor).notification_queue, "pix.notification.sent");
  EXPECT_EQ(config(StageKind::kNotifier).rabbit->host, "127.0.0.1");
}

TEST(StageConfig, CommonFlagsOverrideTheDefaults) {
  const auto c = config(StageKind::kAntifraud, {"--group",
                                                "af-blue",
                                                "--instance-id",
                                                "pod-1",
                                                "--admin-listen",
                                                "0.0.0.0",
                                                "--admin-port",
                                                "0",
                                                "--drain-timeout-ms",
                                                "2500",
                                                "--topic-prefix",
                                                "staging.",
                                                "--kafka-bootstrap",
                                                "k1:9092",
                                                "--kafka-option",
                                                "fetch.wait.max.ms=20",
                                                "--log-level",
                                                "debug",
                                                "--log-format",
                                                "text"});
  EXPECT_EQ(c.group, "af-blue");
  EXPECT_EQ(c.instance_id, "pod-1");
  EXPECT_EQ(c.admin_listen, "0.0.0.0");
  EXPECT_EQ(c.admin_port, 0);
  EXPECT_EQ(c.drain_timeout, 2500ms);
  EXPECT_EQ(c.topic_prefix, "staging.");
  EXPECT_EQ(c.kafka.bootstrap, "k1:9092");
  EXPECT_EQ(c.kafka_properties.at("fetch.wait.max.ms"), "20");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_format, "text");
}

TEST(StageConfig, ADrainTimeoutOfZeroMeansDoNotWait) {
  EXPECT_EQ(config(StageKind::kNotifier, {"--drain-timeout-ms", "0"}).drain_timeout, 0ms);
}

TEST(StageConfig, EachStageTakesItsOwnFlags) {
  const auto settlement = config(StageKind::kSettlement, {"--db", "/tmp/l.db", "--fund", "ana=10.00,bia=20.00",
                                                          "--population", "7", "--population-balance", "12.34"});
  EXPECT_EQ(settlement.db, "/tmp/l.db");
  EXPECT_EQ(settlement.fund, (std::vector<std::string>{"ana=10.00", "bia=20.00"}));
  EXPECT_EQ(settlement.population, 7);
  EXPECT_EQ(settlement.population_balance, "12.34");

  const auto notifier =
      config(StageKind::kNotifier, {"--exchange", "pix-green", "--rabbit-url", "amqp://u:p@rabbit:5673/v"});
  EXPECT_EQ(notifier.exchange, "pix-green");
  EXPECT_EQ(notifier.rabbit->host, "rabbit");
  EXPECT_EQ(notifier.rabbit->port, 5673);
  EXPECT_EQ(notifier.rabbit->vhost, "v");

  const auto auditor = config(StageKind::kAuditor, {"--db", "/tmp/a.db", "--notification-queue", "q.audit"});
  EXPECT_EQ(auditor.db, "/tmp/a.db");
  EXPECT_EQ(auditor.notification_queue, "q.audit");

  EXPECT_EQ(config(StageKind::kAntifraud, {"--rules", "rules.json"}).rules, "rules.json");
}

TEST(StageConfig, DecisionKeysAreFlagsOfTheStagesThatSignOrVerify) {
  const test::TempDbFile key("stage_key");  // any existing file: the flag only checks that it exists
  const auto antifraud = config(StageKind::kAntifraud, {"--decision-key", key.path().c_str()});
  EXPECT_EQ(antifraud.decision_key, key.path());
  const auto settlement = config(StageKind::kSettlement, {"--decision-key", key.path().c_str(), "--trust-key",
                                                          key.path().c_str(), "--allow-unsigned"});
  EXPECT_EQ(settlement.trust_keys, std::vector<std::string>{key.path()});
  EXPECT_TRUE(settlement.allow_unsigned);
  EXPECT_EQ(config(StageKind::kNotifier, {"--trust-key", key.path().c_str()}).trust_keys.size(), 1u);

  // Neither signs nor verifies: the auditor has none of them; the notifier signs nothing.
  EXPECT_NE(refused(StageKind::kAuditor, {"--allow-unsigned"}).code, 0);
  EXPECT_NE(refused(StageKind::kNotifier, {"--decision-key", key.path().c_str()}).code, 0);
  EXPECT_NE(refused(StageKind::kAntifraud, {"--trust-key", key.path().c_str()}).code, 0);
}

TEST(StageConfig, AFlagOfAnotherStageIsRefused) {
  for (auto [kind, flag] : std::vector<std::pair<StageKind, const char*>>{{StageKind::kAntifraud, "--db"},
                                                                          {StageKind::kAntifraud, "--rabbit-url"},
                                                                          {StageKind::kSettlement, "--rules"},
                                                                          {StageKind::kNotifier, "--fund"},
                                                                          {StageKind::kAuditor, "--exchange"}}) {
    const auto exit = refused(kind, {flag, "x"});
    EXPECT_NE(exit.code, 0) << flag;
    EXPECT_NE(exit.message.find(flag), std::string::npos) << exit.message;
  }
}

TEST(StageConfig, TheEnvironmentIsAFallback) {
  ::setenv("PIX_DRAIN_TIMEOUT_MS", "1234", 1);
  ::setenv("PIX_GROUP", "from-env", 1);
  const auto from_env = config(StageKind::kAuditor);
  const auto flag_wins = config(StageKind::kAuditor, {"--drain-timeout-ms", "99"});
  ::unsetenv("PIX_DRAIN_TIMEOUT_MS");
  ::unsetenv("PIX_GROUP");
  EXPECT_EQ(from_env.drain_timeout, 1234ms);
  EXPECT_EQ(from_env.group, "from-env");
  EXPECT_EQ(flag_wins.drain_timeout, 99ms);
}

TEST(StageConfig, BadValuesAreRefusedWithAMessageNamingTheFlag) {
  for (auto args : std::vector<std::vector<const char*>>{{"--drain-timeout-ms", "-1"},
                                                         {"--drain-timeout-ms", "600001"},
                                                         {"--drain-timeout-ms", "soon"},
                                                         {"--admin-port", "70000"},
                                                         {"--log-level", "loud"},
                                                         {"--population", "-3"},
                                                         {"--decision-key", "/nonexistent/key.json"}}) {
    const auto exit = refused(StageKind::kSettlement, args);
    EXPECT_NE(exit.code, 0) << args[0];
    EXPECT_NE(exit.message.find(args[0]), std::string::npos) << exit.message;
  }
}

TEST(StageConfig, BrokerOptionsThatCannotWorkExitWithCodeTwo) {
  auto exit = refused(StageKind::kAntifraud, {"--kafka-option", "novalue"});
  EXPECT_EQ(exit.code, 2);
  EXPECT_NE(exit.message.find("--kafka-option"), std::string::npos) << exit.message;

  exit = refused(StageKind::kAntifraud, {"--kafka-option", "enable.auto.commit=true"});  // the delivery contract
  EXPECT_EQ(exit.code, 2);
  EXPECT_NE(exit.message.find("enable.auto.commit"), std::string::npos) << exit.message;

  exit = refused(StageKind::kAuditor, {"--rabbit-url", "http://rabbit/"});
  EXPECT_EQ(exit.code, 2);
  EXPECT_FALSE(exit.message.empty());
}

TEST(StageConfig, HelpExitsZeroAndListsTheStagesFlagsWithTheirVariables) {
  const auto help = refused(StageKind::kAuditor, {"--help"});
  EXPECT_EQ(help.code, 0);
  for (const char* text : {"pix-auditor", "--drain-timeout-ms", "PIX_DRAIN_TIMEOUT_MS", "PIX_AUDIT_DB",
                           "--notification-queue", "--rabbit-url", "PIX_KAFKA_BOOTSTRAP"}) {
    EXPECT_NE(help.message.find(text), std::string::npos) << text;
  }
  EXPECT_EQ(help.message.find("--fund"), std::string::npos);
  EXPECT_NE(refused(StageKind::kSettlement, {"--help"}).message.find("PIX_LEDGER_DB"), std::string::npos);
}

}  // namespace
}  // namespace pix::saga
