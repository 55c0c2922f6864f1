// Black-box tests of api-kafka: the real pix-api binary against the real Kafka broker.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <csignal>
#include <map>
#include <mutex>
#include <thread>

#include "pix/gateway/idempotency.hpp"
#include "pix/util/random_id.hpp"
#include "support/broker_control.hpp"
#include "support/http_client.hpp"
#include "support/kafka_test_consumer.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

constexpr const char* kSeedKafkaExample = R"({
  "topic": "pix.payment.requested",
  "value": {
    "transactionId": "12345",
    "amount": 100,
    "payer": "alice",
    "receiver": "bob"
  }
})";

std::string payment(const std::string& tx) {
  return R"({"topic":"pix.payment.requested","value":{"transactionId":")" + tx +
         R"(","amount":"10.00","payer":"alice","receiver":"bob"}})";
}

class GatewayKafka : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gateway_ = new GatewayProcess({"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap()});
  }
  static void TearDownTestSuite() {
    delete gateway_;
    gateway_ = nullptr;
  }
  void SetUp() override {
    // The producer needs a moment to reach the broker after start-up: readiness says when.
    HttpClient c(gateway_->port());
    ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s)) << gateway_->logs();
  }
  static GatewayProcess* gateway_;
};
GatewayProcess* GatewayKafka::gateway_ = nullptr;

TEST_F(GatewayKafka, SeedExampleIsAcknowledgedAndReadableWithKeyValueAndHeaders) {
  HttpClient c(gateway_->port());
  const std::string parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto r = c.post_json("/kafka", kSeedKafkaExample, {{"traceparent", "00-" + parent_trace + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  const auto body = json::parse(r.body).as_object();
  EXPECT_EQ(body.at("broker").as_string(), "kafka");
  EXPECT_EQ(body.at("topic").as_string(), "pix.payment.requested");
  EXPECT_EQ(body.at("transactionId").as_string(), "12345");
  const std::string event_id(body.at("eventId").as_string());
  const auto partition = static_cast<std::int32_t>(body.at("partition").as_int64());
  const auto offset = body.at("offset").as_int64();
  ASSERT_GE(offset, 0);

  auto rec = read_one(kafka_bootstrap(), "pix.payment.requested", partition, offset);
  ASSERT_TRUE(rec) << "the acknowledged record is not in the topic";
  EXPECT_EQ(rec->key, "alice") << "requests are keyed by payer";
  EXPECT_EQ(json::parse(rec->value),
            json::parse(R"({"transactionId":"12345","amount":100,"payer":"alice","receiver":"bob"})"));
  EXPECT_EQ(rec->headers["ce_specversion"], "1.0");
  EXPECT_EQ(rec->headers["ce_id"], event_id);
  EXPECT_EQ(rec->headers["ce_type"], "pix.payment.requested");
  EXPECT_EQ(rec->headers["ce_source"], "/pix-pubsub/api-kafka");
  EXPECT_FALSE(rec->headers["ce_time"].empty());
  EXPECT_EQ(rec->headers["content-type"], "application/json");
  // The event continues the caller's trace with a span of its own.
  const std::string tp = rec->headers["traceparent"];
  ASSERT_EQ(tp.size(), 55u) << tp;
  EXPECT_EQ(tp.substr(3, 32), parent_trace);
  EXPECT_NE(tp.substr(36, 16), "00f067aa0ba902b7");
}

TEST_F(GatewayKafka, IdempotentRetryAnswersTheSameAndPublishesOnce) {
  HttpClient c(gateway_->port());
  const std::string tx = "idem-" + util::random_hex(6);
  const std::string key = "key-" + util::random_hex(8);
  auto first = c.post_json("/kafka", payment(tx), {{"Idempotency-Key", key}});
  ASSERT_EQ(first.status, 200) << first.body;
  auto second = c.post_json("/kafka", payment(tx), {{"Idempotency-Key", key}});
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(second.header("idempotent-replayed"), "true");
  // The event id is derived from the caller's scope and the key: every replica gives the same.
  const std::string event_id = gateway::idempotent_event_id(gateway::kUnauthenticatedScope, key);
  EXPECT_EQ(json::parse(first.body).at("eventId").as_string(), event_id);

  // Same key, different event: refused rather than silently answered with the old result.
  auto reused = c.post_json("/kafka", payment(tx + "-other"), {{"Idempotency-Key", key}});
  EXPECT_EQ(reused.status, 422) << reused.body;

  // A marker with the same record key (the payer) lands after, on the same partition: between
  // the two, exactly one record carries the key's event id.
  auto marker = c.post_json("/kafka", payment(tx));
  ASSERT_EQ(marker.status, 200);
  const auto f = json::parse(first.body).as_object();
  const auto m = json::parse(marker.body).as_object();
  ASSERT_EQ(f.at("partition").as_int64(), m.at("partition").as_int64());
  auto records = read_partition(kafka_bootstrap(), "pix.payment.requested",
                                static_cast<std::int32_t>(f.at("partition").as_int64()), f.at("offset").as_int64(),
                                m.at("offset").as_int64() + 1);
  int with_key = 0;
  for (const auto& rec : records) with_key += rec.headers.at("ce_id") == event_id ? 1 : 0;
  EXPECT_EQ(with_key, 1);
}

TEST_F(GatewayKafka, BadRequestsGetExactProblemsWhileValidTrafficKeepsFlowing) {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, not_ok{0};
  std::thread valid([&] {
    HttpClient c(gateway_->port());
    while (!stop.load()) {
      (c.post_json("/kafka", payment("flow-" + util::random_hex(4))).status == 200 ? ok : not_ok)++;
    }
  });

  HttpClient c(gateway_->port());
  struct Case {
    std::string method, target, content_type, body;
    int status;
    std::string field;
  };
  const std::vector<Case> corpus = {
      {"POST", "/kafka", "application/json", "{\"topic\":", 400, ""},
      {"POST", "/kafka", "application/json", "not json at all", 400, ""},
      {"POST", "/kafka", "text/plain", kSeedKafkaExample, 415, "Content-Type"},
      {"POST", "/kafka", "application/x-www-form-urlencoded", "a=b", 415, "Content-Type"},
      {"POST", "/kafka", "application/json; charset=utf-8", kSeedKafkaExample, 200, ""},
      {"POST", "/kafka", "application/json", R"({"topic":"pix.nope","value":{}})", 422, "topic"},
      {"POST", "/kafka", "application/json", R"({"topic":"pix.payment.requested"})", 422, "value"},
      {"POST", "/kafka", "application/json",
       R"({"value":{"transactionId":"1","amount":"lots","payer":"a","receiver":"b"}})", 422, "value.amount"},
      {"POST", "/kafka", "application/json", R"({"value":{"transactionId":"1","amount":5,"receiver":"b"}})", 422,
       "value.payer"},
      {"POST", "/kafka", "application/json", R"({"topic":"pix.audit.log","value":{"transactionId":"1"}})", 422,
       "value.action"},
      {"POST", "/kafka", "application/json", "{\"value\":\"" + std::string(70 * 1024, 'x') + "\"}", 413, ""},
      {"GET", "/kafka", "application/json", "", 405, ""},
      {"DELETE", "/kafka", "application/json", "", 405, ""},
      {"POST", "/healthz", "application/json", "{}", 405, ""},
      {"POST", "/rabbit", "application/json", kSeedKafkaExample, 404, ""},
  };
  for (int round = 0; round < 3; ++round) {
    for (const auto& tc : corpus) {
      auto r = c.request(tc.method, tc.target, tc.body, {{"Content-Type", tc.content_type}});
      ASSERT_EQ(r.status, tc.status) << tc.method << " " << tc.target << " " << tc.body.substr(0, 80) << " -> "
                                     << r.body;
      if (tc.status == 200) continue;
      EXPECT_EQ(r.header("content-type"), "application/problem+json") << r.body;
      const auto problem = json::parse(r.body).as_object();
      EXPECT_EQ(problem.at("status").as_int64(), tc.status);
      if (!tc.field.empty()) {
        EXPECT_EQ(problem.at("field").as_string(), tc.field) << r.body;
      }
      if (tc.status == 405) {
        EXPECT_FALSE(r.header("allow").empty());
      }
      if (tc.field == "topic") {
        EXPECT_EQ(problem.at("allowed").as_array().size(), 5u);
      }
    }
  }
  stop = true;
  valid.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(not_ok.load(), 0) << "valid requests failed while bad ones were being refused";
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST_F(GatewayKafka, MetricsExposeRequestsPublishesAndLatency) {
  HttpClient c(gateway_->port());
  ASSERT_EQ(c.post_json("/kafka", payment("metrics-1")).status, 200);
  auto m = c.request("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.header("content-type").find("text/plain"), std::string::npos);
  for (const char* needle :
       {"pix_http_requests_total{route=\"/kafka\",method=\"POST\",code=\"200\"}",
        "pix_http_request_duration_seconds_bucket{route=\"/kafka\",le=",
        "pix_publish_total{broker=\"kafka\",topic=\"pix.payment.requested\",result=\"acked\"}",
        "pix_publish_in_flight{broker=\"kafka\"}", "pix_broker_ack_duration_seconds_count{broker=\"kafka\"}"}) {
    EXPECT_NE(m.body.find(needle), std::string::npos) << needle;
  }
}

TEST(GatewayKafkaUnreachable, AnswersServiceUnavailableNeverOk) {
  GatewayProcess gw({"--broker", "kafka", "--kafka-bootstrap", "127.0.0.1:1"});
  HttpClient c(gw.port());
  for (int i = 0; i < 20; ++i) {
    auto r = c.post_json("/kafka", payment("down-" + std::to_string(i)));
    ASSERT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.header("retry-after"), "1");
    EXPECT_EQ(json::parse(r.body).at("type").as_string(), "urn:pix-pubsub:problem:broker-unavailable");
  }
  EXPECT_EQ(c.request("GET", "/readyz").status, 503);
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST(GatewayKafkaDrain, SigtermLosesNoneOfTheAcknowledgedEvents) {
  GatewayProcess gw({"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap()});
  {
    HttpClient c(gw.port());
    ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s));
  }
  struct Acked {
    std::string event_id;
    std::int32_t partition;
    std::int64_t offset;
  };
  std::mutex mu;
  std::vector<Acked> acked;
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      try {
        HttpClient c(gw.port());
        for (int i = 0;; ++i) {
          auto r = c.post_json("/kafka", payment("drain-" + std::to_string(t) + "-" + std::to_string(i)));
          ++answered;
          if (r.status != 200) continue;
          auto b = json::parse(r.body).as_object();
          std::lock_guard lock(mu);
          acked.push_back({std::string(b.at("eventId").as_string()),
                           static_cast<std::int32_t>(b.at("partition").as_int64()), b.at("offset").as_int64()});
        }
      } catch (const std::exception&) {
        // The server closed the connection after draining: this client is done.
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return answered.load() > 200; }, 30s));
  gw.signal(SIGTERM);
  EXPECT_EQ(gw.wait_exit(20s), 0) << gw.logs();
  for (auto& t : clients) t.join();
  ASSERT_FALSE(acked.empty());
  // Read each partition's acknowledged range once, then look every acknowledged event up.
  std::map<std::int32_t, std::pair<std::int64_t, std::int64_t>> ranges;
  for (const auto& a : acked) {
    auto [it, fresh] = ranges.try_emplace(a.partition, a.offset, a.offset);
    it->second.first = std::min(it->second.first, a.offset);
    it->second.second = std::max(it->second.second, a.offset);
  }
  std::map<std::pair<std::int32_t, std::int64_t>, std::string> stored;
  for (const auto& [partition, range] : ranges) {
    for (auto& rec :
         read_partition(kafka_bootstrap(), "pix.payment.requested", partition, range.first, range.second + 1, 30s)) {
      stored[{rec.partition, rec.offset}] = rec.headers["ce_id"];
    }
  }
  for (const auto& a : acked) {
    auto it = stored.find({a.partition, a.offset});
    ASSERT_NE(it, stored.end()) << "acknowledged event " << a.event_id << " is missing";
    EXPECT_EQ(it->second, a.event_id);
  }
}

}  // namespace
}  // namespace pix::test

namespace pix::test {
namespace {

// Stops and restarts the real local broker: only where the test scripts own it.
TEST(GatewayKafkaOutage, NeverOkWhileDownAndResumesByItselfWhenBack) {
  if (std::getenv("PIX_TEST_BROKER_CONTROL") == nullptr) {
    GTEST_SKIP() << "set PIX_TEST_BROKER_CONTROL=1 to let tests stop and start the local Kafka";
  }
  GatewayProcess gw({"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap(), "--publish-timeout-ms", "3000"});
  HttpClient c(gw.port());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s));
  ASSERT_EQ(c.post_json("/kafka", payment("outage-before")).status, 200);

  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/kafka.sh stop >/dev/null 2>&1"), 0);
  // While the broker is away: 503 (or 504 for an event caught mid-flight), never 200.
  int unavailable = 0;
  for (int i = 0; i < 30; ++i) {
    auto r = c.post_json("/kafka", payment("outage-down-" + std::to_string(i)));
    ASSERT_NE(r.status, 200) << "answered 200 with the broker stopped: " << r.body;
    ASSERT_TRUE(r.status == 503 || r.status == 504) << r.status << " " << r.body;
    if (r.status == 503) {
      ++unavailable;
      EXPECT_FALSE(r.header("retry-after").empty());
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(unavailable, 0);
  EXPECT_EQ(c.request("GET", "/readyz").status, 503);

  ASSERT_EQ(std::system(PIX_SOURCE_DIR "/scripts/local/kafka.sh start >/dev/null 2>&1"), 0);
  const Reply back = post_until_status(c, "/kafka", payment("outage-after"), 200, 60s);
  ASSERT_EQ(back.status, 200) << "publishing did not resume after the broker came back: " << back.status << " "
                              << back.body;
  const auto b = json::parse(back.body).as_object();
  auto rec = read_one(kafka_bootstrap(), "pix.payment.requested",
                      static_cast<std::int32_t>(b.at("partition").as_int64()), b.at("offset").as_int64());
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->headers["ce_id"], std::string(b.at("eventId").as_string()));
  EXPECT_EQ(c.request("GET", "/readyz").status, 200);
}

}  // namespace
}  // namespace pix::test

namespace pix::test {
namespace {

TEST(GatewayKafkaSilentBroker, AnswersGatewayTimeoutWhenNoAckComes) {
  if (std::getenv("PIX_TEST_BROKER_CONTROL") == nullptr) {
    GTEST_SKIP() << "set PIX_TEST_BROKER_CONTROL=1 to let tests freeze the local Kafka";
  }
  const int pid = local_broker_pid("kafka");
  ASSERT_GT(pid, 0) << "no pid file for the local Kafka";
  GatewayProcess gw({"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap(), "--publish-timeout-ms", "1000"});
  HttpClient c(gw.port());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s));
  ASSERT_EQ(c.post_json("/kafka", payment("silent-before")).status, 200);
  {
    FrozenProcess frozen(pid);
    auto r = c.post_json("/kafka", payment("silent-during"));
    ASSERT_EQ(r.status, 504) << r.body;
    const auto problem = json::parse(r.body).as_object();
    EXPECT_EQ(problem.at("type").as_string(), "urn:pix-pubsub:problem:broker-ack-timeout");
    EXPECT_FALSE(problem.at("eventId").as_string().empty());
    EXPECT_NE(std::string(problem.at("detail").as_string()).find("may"), std::string::npos);
  }
  const Reply back = post_until_status(c, "/kafka", payment("silent-after"), 200, 60s);
  EXPECT_EQ(back.status, 200) << back.status << " " << back.body;
}

}  // namespace
}  // namespace pix::test
