#include "pix/sim/sim_config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "temp_db_file.hpp"

namespace pix::sim {
namespace {

std::variant<SimConfig, ParseExit> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "pix-sim");
  return parse_sim_config(static_cast<int>(args.size()), args.data());
}

SimConfig parse_ok(std::vector<const char*> args) {
  auto r = parse(args);
  if (auto* exit = std::get_if<ParseExit>(&r)) {
    ADD_FAILURE() << args.front() << ": " << exit->message;
    return {};
  }
  return std::get<SimConfig>(r);
}

/// The message of a parse that must fail with code 2.
std::string parse_error(std::vector<const char*> args) {
  auto r = parse(args);
  if (!std::holds_alternative<ParseExit>(r)) {
    ADD_FAILURE() << "parsed, but should not have";
    return {};
  }
  EXPECT_EQ(std::get<ParseExit>(r).code, 2) << std::get<ParseExit>(r).message;
  return std::get<ParseExit>(r).message;
}

/// A file under the test temp dir holding `content`, removed at the end.
class TempFile {
 public:
  explicit TempFile(const std::string& content) : file_("pix_sim_config") {
    std::ofstream(file_.path(), std::ios::binary) << content;
  }
  const char* path() const { return file_.path().c_str(); }

 private:
  test::TempDbFile file_;
};

TEST(SimConfig, LoadDefaultsSendTheSeedExampleToApiKafkaClosedLoop) {
  const SimConfig c = parse_ok({"load"});
  ASSERT_TRUE(std::holds_alternative<LoadCommand>(c.command));
  const auto& load = std::get<LoadCommand>(c.command);
  EXPECT_EQ(load.target, "/kafka");
  EXPECT_NE(load.body.find(R"("topic":"pix.payment.requested")"), std::string::npos) << load.body;
  EXPECT_FALSE(load.json);
  ASSERT_EQ(c.load.endpoints.size(), 1u);
  EXPECT_EQ(c.load.endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(c.load.endpoints[0].port, 5000);
  EXPECT_FALSE(c.load.endpoints[0].tls);
  EXPECT_EQ(c.load.mode, LoadOptions::Mode::kClosedLoop);
  EXPECT_EQ(c.load.concurrency, 64);
  EXPECT_EQ(c.load.max_connections, 1024);
  EXPECT_EQ(c.load.duration, std::chrono::seconds(10));
  EXPECT_EQ(c.load.count, 0u);
  EXPECT_EQ(c.load.timeout, std::chrono::seconds(10));
  EXPECT_EQ(c.load.io_threads, 1);
  EXPECT_TRUE(c.load.progress);
  EXPECT_TRUE(c.load.ca_file.empty());
  EXPECT_TRUE(c.load.headers.empty());
  EXPECT_EQ(c.load.stop, nullptr);  // the caller's
}

TEST(SimConfig, LoadFlagsReachTheEngineOptions) {
  const SimConfig c = parse_ok({"load",
                                "--url",
                                "https://[::1]:5443/rabbit?x=1",
                                "--rate",
                                "250.5",
                                "--concurrency",
                                "8",
                                "--duration",
                                "1.5s",
                                "--count",
                                "1000",
                                "--timeout-ms",
                                "750",
                                "--max-connections",
                                "32",
                                "--threads",
                                "2",
                                "--json",
                                "--no-progress",
                                "--body",
                                R"({"a":1})"});
  const auto& load = std::get<LoadCommand>(c.command);
  EXPECT_EQ(load.target, "/rabbit?x=1");
  EXPECT_EQ(load.body, R"({"a":1})");
  EXPECT_TRUE(load.json);
  EXPECT_EQ(c.load.endpoints[0].host, "::1");
  EXPECT_EQ(c.load.endpoints[0].port, 5443);
  EXPECT_TRUE(c.load.endpoints[0].tls);
  EXPECT_EQ(c.load.mode, LoadOptions::Mode::kOpenLoop);
  EXPECT_DOUBLE_EQ(c.load.rate, 250.5);
  EXPECT_EQ(c.load.concurrency, 8);
  EXPECT_EQ(c.load.duration, std::chrono::milliseconds(1500));  // --duration and --count: whichever first
  EXPECT_EQ(c.load.count, 1000u);
  EXPECT_EQ(c.load.timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(c.load.max_connections, 32);
  EXPECT_EQ(c.load.io_threads, 2);
  EXPECT_FALSE(c.load.progress);
}

TEST(SimConfig, CountAloneHasNoTimeLimitAndConnectionsCoverTheConcurrency) {
  const SimConfig c = parse_ok({"load", "--count", "50", "--concurrency", "2000", "--max-connections", "10"});
  EXPECT_EQ(c.load.count, 50u);
  EXPECT_EQ(c.load.duration.count(), 0);
  EXPECT_EQ(c.load.max_connections, 2000);
  EXPECT_EQ(parse_ok({"load", "--duration", "0"}).load.duration.count(), 0);  // until Ctrl-C
}

TEST(SimConfig, BodyFileIsRead) {
  const TempFile body(R"({"topic":"pix.audit.log"})");
  EXPECT_EQ(std::get<LoadCommand>(parse_ok({"load", "--body-file", body.path()}).command).body,
            R"({"topic":"pix.audit.log"})");
  EXPECT_NE(parse_error({"load", "--body", "{}", "--body-file", body.path()}).find("--body"), std::string::npos);
}

TEST(SimConfig, HeadersAndBearerFileBecomeRequestHeaders) {
  const TempFile token("  eyJhbGciOi.payload.sig\n");
  const SimConfig c =
      parse_ok({"load", "--header", "X-Trace: a:b", "--header", "X-Empty:", "--bearer-file", token.path()});
  ASSERT_EQ(c.load.headers.size(), 3u);
  EXPECT_EQ(c.load.headers[0], (Header{"X-Trace", "a:b"}));
  EXPECT_EQ(c.load.headers[1], (Header{"X-Empty", ""}));
  EXPECT_EQ(c.load.headers[2], (Header{"Authorization", "Bearer eyJhbGciOi.payload.sig"}));
}

TEST(SimConfig, CaFromTheFlagOrFromPixSimCa) {
  const TempFile ca("-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(parse_ok({"load", "--ca", ca.path()}).load.ca_file, ca.path());
  ::setenv("PIX_SIM_CA", ca.path(), 1);
  const SimConfig from_env = parse_ok({"payments"});
  const SimConfig flag_wins = parse_ok({"seed", "--ca", ca.path()});
  ::unsetenv("PIX_SIM_CA");
  EXPECT_EQ(from_env.load.ca_file, ca.path());
  EXPECT_EQ(flag_wins.load.ca_file, ca.path());
  EXPECT_TRUE(parse_ok({"load"}).load.ca_file.empty());
}

TEST(SimConfig, SeedDefaultsSendAnEventEveryFiveSecondsToBothApis) {
  const SimConfig c = parse_ok({"seed"});
  ASSERT_TRUE(std::holds_alternative<SeedCommand>(c.command));
  const auto& seed = std::get<SeedCommand>(c.command);
  EXPECT_EQ(seed.targets[0], "/kafka");
  EXPECT_EQ(seed.targets[1], "/rabbit");
  EXPECT_EQ(seed.interval, "5s");
  EXPECT_FALSE(seed.seed.has_value());  // the clock's, chosen when it runs
  ASSERT_EQ(c.load.endpoints.size(), 2u);
  EXPECT_EQ(c.load.endpoints[0].port, 5000);
  EXPECT_EQ(c.load.endpoints[1].port, 5001);
  EXPECT_EQ(c.load.mode, LoadOptions::Mode::kOpenLoop);
  EXPECT_DOUBLE_EQ(c.load.rate, 0.2);
  EXPECT_EQ(c.load.concurrency, 1);
  EXPECT_EQ(c.load.duration.count(), 0);
  EXPECT_EQ(c.load.count, 0u);
  EXPECT_EQ(c.load.timeout, std::chrono::seconds(10));
  EXPECT_FALSE(c.load.progress);
}

TEST(SimConfig, SeedFlags) {
  const SimConfig c = parse_ok({"seed", "--kafka-url", "http://k:7000/k", "--rabbit-url", "https://r/r", "--interval",
                                "250ms", "--count", "7", "--seed", "99", "--timeout-ms", "300", "--header", "X-A: 1"});
  const auto& seed = std::get<SeedCommand>(c.command);
  EXPECT_EQ(seed.targets[0], "/k");
  EXPECT_EQ(seed.targets[1], "/r");
  EXPECT_EQ(seed.interval, "250ms");
  EXPECT_EQ(seed.seed, 99u);
  EXPECT_EQ(c.load.endpoints[0].host, "k");
  EXPECT_EQ(c.load.endpoints[0].port, 7000);
  EXPECT_EQ(c.load.endpoints[1].host, "r");
  EXPECT_TRUE(c.load.endpoints[1].tls);
  EXPECT_DOUBLE_EQ(c.load.rate, 4.0);
  EXPECT_EQ(c.load.count, 7u);
  EXPECT_EQ(c.load.timeout, std::chrono::milliseconds(300));
  ASSERT_EQ(c.load.headers.size(), 1u);
}

TEST(SimConfig, PaymentsDefaults) {
  const SimConfig c = parse_ok({"payments"});
  ASSERT_TRUE(std::holds_alternative<PaymentsCommand>(c.command));
  const auto& p = std::get<PaymentsCommand>(c.command);
  EXPECT_EQ(p.payments.population, 1000u);
  EXPECT_EQ(p.payments.seed, 42u);
  EXPECT_DOUBLE_EQ(p.payments.rule_breaking_share, 0.05);
  EXPECT_DOUBLE_EQ(p.payments.retry_share, 0.0);
  EXPECT_TRUE(p.payments.idempotency_keys);
  EXPECT_TRUE(p.payments.night_aware);
  EXPECT_TRUE(p.payments.run_id.empty());  // made per run, from the clock
  EXPECT_EQ(p.payments.target, "/kafka");
  EXPECT_FALSE(p.json);
  EXPECT_EQ(c.load.mode, LoadOptions::Mode::kClosedLoop);
  EXPECT_EQ(c.load.endpoints.at(0).port, 5000);
}

TEST(SimConfig, PaymentsFlags) {
  const SimConfig c = parse_ok({"payments", "--url", "http://127.0.0.1:5001/rabbit", "--population", "50", "--seed",
                                "7", "--rule-breaking-share", "0.5", "--retry-share", "0.25", "--no-idempotency-keys",
                                "--run-id", "nightly", "--no-night-aware", "--rate", "10", "--json"});
  const auto& p = std::get<PaymentsCommand>(c.command);
  EXPECT_EQ(p.payments.target, "/rabbit");
  EXPECT_EQ(p.payments.population, 50u);
  EXPECT_EQ(p.payments.seed, 7u);
  EXPECT_DOUBLE_EQ(p.payments.rule_breaking_share, 0.5);
  EXPECT_DOUBLE_EQ(p.payments.retry_share, 0.25);
  EXPECT_FALSE(p.payments.idempotency_keys);
  EXPECT_EQ(p.payments.run_id, "nightly");
  EXPECT_FALSE(p.payments.night_aware);
  EXPECT_TRUE(p.json);
  EXPECT_EQ(c.load.mode, LoadOptions::Mode::kOpenLoop);
  EXPECT_EQ(c.load.endpoints.at(0).port, 5001);
}

TEST(SimConfig, InvalidValuesNameTheirFlag) {
  const TempFile empty("\n");
  const TempFile two_words("abc def\n");
  const std::vector<std::pair<std::vector<const char*>, std::string>> cases = {
      {{"load", "--rate", "0"}, "--rate"},
      {{"load", "--rate", "fast"}, "--rate"},
      {{"load", "--concurrency", "0"}, "--concurrency"},
      {{"load", "--duration", "10 parsecs"}, "--duration"},
      {{"load", "--timeout-ms", "0"}, "--timeout-ms"},
      {{"load", "--max-connections", "0"}, "--max-connections"},
      {{"load", "--threads", "17"}, "--threads"},
      {{"load", "--count", "-1"}, "--count"},
      {{"load", "--url", "ftp://127.0.0.1/kafka"}, "--url"},
      {{"load", "--url", "http://h:70000/"}, "--url"},
      {{"load", "--header", "NoColon"}, "--header"},
      {{"load", "--header", "Bad Name: x"}, "--header"},
      {{"load", "--ca", "/nonexistent/ca.pem"}, "--ca"},
      {{"load", "--bearer-file", "/nonexistent/token"}, "--bearer-file"},
      {{"load", "--bearer-file", empty.path()}, "--bearer-file"},
      {{"load", "--bearer-file", two_words.path()}, "--bearer-file"},
      {{"load", "--bearer-file", two_words.path(), "--header", "authorization: x"}, "--bearer-file"},
      {{"seed", "--interval", "0"}, "--interval"},
      {{"seed", "--interval", "soon"}, "--interval"},
      {{"seed", "--kafka-url", "127.0.0.1:5000"}, "--kafka-url"},
      {{"seed", "--rabbit-url", "http://:5001/"}, "--rabbit-url"},
      {{"seed", "--count", "-1"}, "--count"},
      {{"seed", "--timeout-ms", "0"}, "--timeout-ms"},
      {{"payments", "--url", "http://127.0.0.1:5000/other"}, "--url"},
      {{"payments", "--population", "1"}, "--population"},
      {{"payments", "--rule-breaking-share", "1.5"}, "--rule-breaking-share"},
      {{"payments", "--retry-share", "-0.1"}, "--retry-share"},
      {{"load", "--no-such-flag"}, "--no-such-flag"},
  };
  for (const auto& [args, flag] : cases) {
    const std::string message = parse_error(args);
    EXPECT_NE(message.find(flag), std::string::npos)
        << args[1] << " " << (args.size() > 2 ? args[2] : "") << ": " << message;
  }
}

TEST(SimConfig, ACommandIsRequired) {
  EXPECT_NE(parse_error({}).find("subcommand"), std::string::npos);
  parse_error({"flood"});
}

TEST(SimConfig, HelpExitsZeroAndListsTheCommands) {
  auto r = parse({"--help"});
  ASSERT_TRUE(std::holds_alternative<ParseExit>(r));
  EXPECT_EQ(std::get<ParseExit>(r).code, 0);
  for (const char* command : {"load", "seed", "payments"}) {
    EXPECT_NE(std::get<ParseExit>(r).message.find(command), std::string::npos) << command;
  }
  r = parse({"payments", "--help"});
  ASSERT_TRUE(std::holds_alternative<ParseExit>(r));
  EXPECT_EQ(std::get<ParseExit>(r).code, 0);
  EXPECT_NE(std::get<ParseExit>(r).message.find("--population"), std::string::npos);
  EXPECT_NE(std::get<ParseExit>(r).message.find("PIX_SIM_CA"), std::string::npos);
}

}  // namespace
}  // namespace pix::sim
