// Least privilege on the real secure brokers: each component's credentials can do its own job
// and nothing else, asserted with the errors the brokers return.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <future>

#include "pix/amqp/confirm_publisher.hpp"
#include "pix/amqp/connection.hpp"
#include "pix/kafka/producer.hpp"
#include "pix/util/random_id.hpp"
#include "support/secure_env.hpp"
#include "support/service_process.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;

class SecureBrokers : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = SecureEnv::from_environment();
    if (!env_) GTEST_SKIP() << "PIX_SECURE_STATE is not set (scripts/local/test.sh starts the secure brokers)";
  }
  std::optional<SecureEnv> env_;
};

// ---- Kafka ----------------------------------------------------------------------------------

/// The broker's verdict on one record written as `component` to `topic`.
broker::PublishResult produce_as(const SecureEnv& env, const std::string& component, const std::string& topic) {
  kafka::ProducerOptions o;
  o.bootstrap_servers = env.kafka_bootstrap();
  o.client_id = "secure-test-" + component;
  o.extra = env.kafka_properties(component);
  o.ack_timeout = 10s;
  kafka::KafkaPublisher p(o);
  eventually([&] { return p.broker_up(); }, 15s);
  broker::OutboundEvent ev;
  ev.topic = topic;
  ev.key = "k";
  ev.payload = R"({"transactionId":"acl-test"})";
  ev.id = util::uuid_v4();
  std::promise<broker::PublishResult> done;
  p.publish(ev, [&](broker::PublishResult r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

/// The first error a consumer of `topic` in `group` sees as `component` (empty: it got a record or nothing).
std::string consume_error_as(const SecureEnv& env, const std::string& component, const std::string& topic,
                             const std::string& group) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto props = env.kafka_properties(component);
  props["bootstrap.servers"] = env.kafka_bootstrap();
  props["group.id"] = group;
  props["auto.offset.reset"] = "earliest";
  for (const auto& [k, v] : props) rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  EXPECT_NE(rk, nullptr) << err;
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (error.empty() && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) continue;
    if (m->err) error = rd_kafka_err2name(m->err);
    const bool got_record = !m->err;
    rd_kafka_message_destroy(m);
    if (got_record) break;
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return error;
}

/// The first error librdkafka reports for a client with these properties.
std::string client_error(const SecureEnv& env, std::map<std::string, std::string> props) {
  struct Seen {
    std::promise<std::string> first;
    std::atomic<bool> set{false};
  } seen;
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  props["bootstrap.servers"] = env.kafka_bootstrap();
  for (const auto& [k, v] : props) rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  rd_kafka_conf_set_opaque(conf, &seen);
  rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t*, int code, const char* reason, void* opaque) {
    auto* s = static_cast<Seen*>(opaque);
    if (!s->set.exchange(true)) {
      s->first.set_value(std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(code))) + ": " + reason);
    }
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  auto future = seen.first.get_future();
  std::string out = "no error";
  for (int i = 0; i < 100 && future.wait_for(0s) != std::future_status::ready; ++i) rd_kafka_poll(rk, 100);
  if (future.wait_for(0s) == std::future_status::ready) out = future.get();
  rd_kafka_destroy(rk);
  return out;
}

TEST_F(SecureBrokers, KafkaRefusesAWrongPasswordAndAPlaintextClient) {
  auto props = env_->kafka_properties("antifraud");
  props["sasl.password"] = "not-the-password";
  EXPECT_NE(client_error(*env_, props).find("_AUTHENTICATION"), std::string::npos);
  // A client speaking plaintext to the SASL_SSL listener never gets a metadata answer.
  EXPECT_NE(client_error(*env_, {}), "no error");
}

TEST_F(SecureBrokers, TheGatewayWritesPaymentsButCannotReadThem) {
  EXPECT_EQ(produce_as(*env_, "api-kafka", "pix.payment.requested").status, broker::PublishStatus::kAcked);
  const std::string e = consume_error_as(*env_, "api-kafka", "pix.payment.requested", "antifraud");
  EXPECT_TRUE(e.find("AUTHORIZATION_FAILED") != std::string::npos) << e;
}

TEST_F(SecureBrokers, AStageCannotWriteAnotherStagesTopic) {
  // Anti-fraud decides validations; only settlement may say a payment settled.
  const auto forged = produce_as(*env_, "antifraud", "pix.payment.settled");
  EXPECT_EQ(forged.status, broker::PublishStatus::kRejected) << forged.detail;
  EXPECT_NE(forged.detail.find("authorization"), std::string::npos) << forged.detail;
  // Settlement cannot forge a validation, nor can the notifier.
  EXPECT_EQ(produce_as(*env_, "settlement", "pix.payment.validated").status, broker::PublishStatus::kRejected);
  EXPECT_EQ(produce_as(*env_, "notifier", "pix.payment.settled").status, broker::PublishStatus::kRejected);
  // Each writes its own output.
  EXPECT_EQ(produce_as(*env_, "antifraud", "pix.payment.validated").status, broker::PublishStatus::kAcked);
  EXPECT_EQ(produce_as(*env_, "auditor", "pix.audit.log").status, broker::PublishStatus::kAcked);
}

TEST_F(SecureBrokers, AStageReadsOnlyItsInputInItsOwnGroups) {
  EXPECT_EQ(consume_error_as(*env_, "settlement", "pix.payment.validated", "settlement.secure-test"), "");
  const std::string other_group = consume_error_as(*env_, "settlement", "pix.payment.validated", "antifraud");
  EXPECT_NE(other_group.find("GROUP_AUTHORIZATION_FAILED"), std::string::npos) << other_group;
  const std::string other_topic = consume_error_as(*env_, "settlement", "pix.payment.requested", "settlement.t2");
  EXPECT_NE(other_topic.find("TOPIC_AUTHORIZATION_FAILED"), std::string::npos) << other_topic;
}

// ---- RabbitMQ -------------------------------------------------------------------------------

broker::PublishResult publish_as(const SecureEnv& env, const std::string& user, const std::string& routing_key) {
  amqp::ConfirmPublisher::Options o;
  o.url = env.rabbit_url(user);
  o.exchange = "pix";
  o.connection_name = "secure-test-" + user;
  o.confirm_timeout = 10s;
  amqp::ConfirmPublisher p(o);
  eventually([&] { return p.connected(); }, 15s);
  broker::OutboundEvent ev;
  ev.topic = routing_key;
  ev.payload = R"({"transactionId":"perm-test","status":"notified"})";
  ev.id = util::uuid_v4();
  std::promise<broker::PublishResult> done;
  p.publish(ev, [&](broker::PublishResult r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

TEST_F(SecureBrokers, EachRabbitUserPublishesOnlyItsOwnRoutingKeys) {
  EXPECT_EQ(publish_as(*env_, "api-rabbitmq", "pix.notification.sent").status, broker::PublishStatus::kAcked);
  EXPECT_EQ(publish_as(*env_, "notifier", "pix.notification.sent").status, broker::PublishStatus::kAcked);
  const auto evil = publish_as(*env_, "api-rabbitmq", "evil.key");
  EXPECT_NE(evil.status, broker::PublishStatus::kAcked) << evil.detail;
  const auto forged = publish_as(*env_, "notifier", "pix.payment.settled");
  EXPECT_NE(forged.status, broker::PublishStatus::kAcked) << forged.detail;
  const auto auditor = publish_as(*env_, "auditor", "pix.notification.sent");
  EXPECT_NE(auditor.status, broker::PublishStatus::kAcked) << auditor.detail;
}

TEST_F(SecureBrokers, AmqpsChecksTheBrokersCertificateAndGuestIsGone) {
  auto url = env_->rabbit_url("notifier");
  auto opened = amqp::detail::open_connection(url, 10s, 0, "secure-test");
  ASSERT_NE(opened.conn, nullptr) << opened.error;
  EXPECT_NE(opened.ssl, nullptr);
  amqp::detail::close_connection(opened.conn);

  // A CA that did not sign the broker's certificate: the handshake fails, nothing is sent.
  auto wrong_ca = url;
  wrong_ca.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  auto refused = amqp::detail::open_connection(wrong_ca, 10s, 0, "secure-test");
  EXPECT_EQ(refused.conn, nullptr);
  EXPECT_NE(refused.error.find("TLS"), std::string::npos) << refused.error;

  auto guest = url;
  guest.user = "guest";
  guest.password = "guest";
  auto as_guest = amqp::detail::open_connection(guest, 10s, 0, "secure-test");
  EXPECT_EQ(as_guest.conn, nullptr);
  if (as_guest.conn) amqp::detail::close_connection(as_guest.conn);

  auto wrong_password = url;
  wrong_password.password = "not-the-password";
  EXPECT_EQ(amqp::detail::open_connection(wrong_password, 10s, 0, "secure-test").conn, nullptr);
}

}  // namespace
}  // namespace pix::test
