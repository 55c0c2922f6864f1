// The seed's two consumers, rebuilt as pix-tail: what a user sees on the terminal.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <cstdio>
#include <future>
#include <set>

#include "pix/amqp/topology.hpp"
#include "pix/kafka/admin.hpp"
#include "pix/util/random_id.hpp"
#include "support/amqp_test_consumer.hpp"
#include "support/http_client.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

/// Runs a command to completion and returns its standard output, one string per line.
std::vector<std::string> run_lines(const std::string& command) {
  std::vector<std::string> lines;
  FILE* p = popen((command + " 2>/dev/null").c_str(), "r");
  if (!p) return lines;
  char buf[8192];
  while (std::fgets(buf, sizeof buf, p)) {
    std::string line(buf);
    if (!line.empty() && line.back() == '\n') line.pop_back();
    lines.push_back(line);
  }
  pclose(p);
  return lines;
}

std::string payment(const std::string& tx) {
  return R"({"topic":"pix.payment.requested","value":{"transactionId":")" + tx +
         R"(","amount":1,"payer":"alice","receiver":"bob"}})";
}

TEST(Tail, KafkaPrintsEachEventOnceAndCommitsWhatItPrinted) {
  const std::string prefix = "tail" + util::random_hex(4) + ".";
  const std::string topic = prefix + "pix.payment.requested";
  ASSERT_TRUE(kafka::create_topics(kafka_bootstrap(), {{topic, 1, -1, {}}}).front().ok);
  GatewayProcess api({"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap(), "--topic-prefix", prefix});
  HttpClient c(api.port());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = c.post_json("/kafka", payment("tail-" + std::to_string(i)));
    ASSERT_EQ(r.status, 200);
    ids.emplace_back(json::parse(r.body).at("eventId").as_string());
  }
  const std::string tail = program_path("pix-tail") + " --json --max 3 kafka --kafka-bootstrap " + kafka_bootstrap() +
                           " --group " + prefix + "g --topics " + topic;
  auto lines = run_lines(tail);
  ASSERT_EQ(lines.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto o = json::parse(lines[i]).as_object();
    EXPECT_EQ(o.at("id").as_string(), ids[i]);
    EXPECT_EQ(o.at("topic").as_string(), topic);
    EXPECT_EQ(o.at("transactionId").as_string(), "tail-" + std::to_string(i));
    EXPECT_EQ(o.at("value").at("payer").as_string(), "alice");
  }
  // The same group starts after what it printed: only the new event shows.
  ASSERT_EQ(c.post_json("/kafka", payment("tail-new")).status, 200);
  lines = run_lines(program_path("pix-tail") + " --max 1 kafka --kafka-bootstrap " + kafka_bootstrap() + " --group " +
                    prefix + "g --topics " + topic);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("tx=tail-new"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(topic), std::string::npos) << lines[0];
  kafka::delete_topics(kafka_bootstrap(), {topic});
}

TEST(Tail, RabbitSeesEveryRoutingKeyOfTheExchange) {
  amqp::TopologyOptions topo;
  topo.exchange = TestRabbit::unique_name("tail-pix");
  topo.queue_prefix = topo.exchange + ".";
  ASSERT_TRUE(amqp::declare_topology(TestRabbit::url(), topo));
  GatewayProcess api({"--broker", "rabbit", "--rabbit-url", rabbit_url(), "--exchange", topo.exchange});
  HttpClient c(api.port());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s));

  auto tail = std::async(std::launch::async, [&] {
    return run_lines(program_path("pix-tail") + " --json --max 2 rabbit --rabbit-url " + rabbit_url() + " --exchange " +
                     topo.exchange);
  });
  // The tail's queue exists only once it runs: publish until it has seen two events.
  int sent = 0;
  while (tail.wait_for(200ms) != std::future_status::ready && sent < 100) {
    const bool audit = sent % 2 == 1;
    const std::string body = audit ? R"({"topic":"pix.audit.log","value":{"transactionId":"t","action":"x"}})"
                                   : R"({"topic":"pix.notification.sent","value":{"transactionId":"t","status":"n"}})";
    ASSERT_EQ(c.post_json("/rabbit", body).status, 200);
    ++sent;
  }
  const auto lines = tail.get();
  ASSERT_EQ(lines.size(), 2u);
  std::set<std::string> keys;
  for (const auto& l : lines) keys.insert(std::string(json::parse(l).at("topic").as_string()));
  // Publishes alternate between two keys, and the tail sees consecutive ones once bound: both.
  EXPECT_EQ(keys, (std::set<std::string>{"pix.audit.log", "pix.notification.sent"}));
  amqp::delete_topology(TestRabbit::url(), topo);
}

}  // namespace
}  // namespace pix::test
