#pragma once
// A private copy of the whole saga for one test: the real pix-api and the four real stage
// processes on Kafka topics of their own (and a RabbitMQ exchange of their own on the plain
// brokers). In the secure profile every process runs as its own principal over TLS, the
// gateway serves HTTPS with bearer tokens, and the test's topics get the components' ACLs.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pix/amqp/topology.hpp"
#include "pix/saga/report.hpp"
#include "pix/security/token_issuer.hpp"
#include "support/http_client.hpp"
#include "support/kafka_test_consumer.hpp"
#include "support/secure_env.hpp"
#include "support/service_process.hpp"

namespace pix::test {

inline constexpr int kSagaPopulation = 20;
inline constexpr std::int64_t kSagaPopulationCents = 5'000'000;  // R$50,000.00 each
inline constexpr int kSagaDemoAccounts = 5;                      // alice..erin, funded by default too

class SagaWorld {
 public:
  /// Plain brokers, or the secure profile when `secure` is given; `topic_config` adds topic
  /// settings by (unprefixed) topic name, e.g. {"pix.payment.validated", {{"max.message.bytes", "2000"}}}.
  explicit SagaWorld(std::optional<SecureEnv> secure = std::nullopt,
                     const std::map<std::string, std::map<std::string, std::string>>& topic_config = {});
  ~SagaWorld();
  SagaWorld(const SagaWorld&) = delete;
  SagaWorld& operator=(const SagaWorld&) = delete;

  std::string ledger_db() const;
  /// The key file `stage` (antifraud, settlement) signs its decisions with.
  std::string decision_key(const std::string& stage) const;
  std::string audit_db() const;
  /// Starts (or restarts, on the same files) replica `replica` of `stage` in its usual group, or
  /// in `group` when given; replica 1 is named `stage`, the others `stage#N` (see stage()).
  void start_stage(const std::string& stage, int replica = 1, const std::string& group = "");
  void start_all();
  ServiceProcess& stage(const std::string& name) { return *stages_.at(name); }
  /// More command-line arguments for every start of `stage` from now on.
  void add_stage_args(const std::string& stage, std::vector<std::string> args) {
    auto& a = extra_args_[stage];
    a.insert(a.end(), args.begin(), args.end());
  }
  /// More environment variables for every process started from now on (e.g. OTEL_*).
  void add_env(const std::map<std::string, std::string>& env) {
    for (const auto& [k, v] : env) extra_env_[k] = v;
  }
  /// Anti-fraud's rules file (JSON, as --rules takes it); call before its first start.
  void set_antifraud_rules(const std::string& json);
  /// Starts one more gateway like the first (same topics, same auth); returns its index.
  std::size_t start_gateway();
  ServiceProcess& gateway(std::size_t i) { return *gateways_.at(i); }
  /// kill -9 of gateway `i`, then the same gateway again.
  void restart_gateway(std::size_t i);
  const std::string& prefix() const { return prefix_; }
  /// The world's RabbitMQ exchange and queues (plain brokers: names of its own).
  const amqp::TopologyOptions& rabbit_topology() const { return rabbit_; }
  bool secure() const { return secure_.has_value(); }
  /// The test restarts RabbitMQ: the queues settle before the destructor deletes them.
  void broker_restarted() { broker_restarted_ = true; }

  /// A client of gateway `i` (HTTPS with the profile's CA when secure).
  std::unique_ptr<HttpClient> api_client(std::size_t i = 0) const;
  /// POSTs a payment body to /kafka (with a bearer token when secure), plus `headers`.
  Reply post(HttpClient& client, const std::string& body, const std::map<std::string, std::string>& headers = {}) const;

  /// librdkafka properties of `component` (empty on the plain brokers) and the bootstrap.
  std::map<std::string, std::string> kafka_properties(const std::string& component) const;
  std::string bootstrap() const;

  saga::SagaReport report() const;
  /// Every record on the world's pix.dlq, all partitions.
  std::vector<KafkaRecord> dead_letters() const;
  /// Polls until `done(report)` or the timeout; returns the last report.
  template <typename Pred>
  saga::SagaReport wait_for(Pred done, std::chrono::seconds timeout) const {
    saga::SagaReport r;
    eventually(
        [&] {
          if (!stores_exist()) return false;
          r = report();
          return done(r);
        },
        timeout, std::chrono::milliseconds(250));
    return r;
  }

 private:
  std::vector<std::string> stage_args(const std::string& stage, int replica, const std::string& group) const;
  std::vector<std::string> gateway_args() const;
  std::map<std::string, std::string> env_of(const std::string& component) const;
  bool stores_exist() const;

  std::optional<SecureEnv> secure_;
  std::string prefix_;
  std::vector<std::string> topics_;
  amqp::TopologyOptions rabbit_;
  std::string dir_;
  std::optional<security::TokenIssuer> issuer_;
  std::string token_;
  bool broker_restarted_ = false;
  std::vector<std::unique_ptr<GatewayProcess>> gateways_;
  std::string rules_file_;
  std::map<std::string, std::vector<std::string>> extra_args_;
  std::map<std::string, std::string> extra_env_;
  std::map<std::string, std::unique_ptr<StageProcess>> stages_;
};

/// A payment from pix-<payer> to pix-<receiver>, `extra` appended inside `value`.
std::string saga_payment(const std::string& tx, const std::string& amount, int payer, int receiver,
                         const std::string& extra = "");

/// The end-to-end scenario both profiles must pass: good payments settle and are notified,
/// each rule rejection moves no money, a poison record is dead-lettered, the audit chain holds
/// every event once and money is conserved.
void expect_payments_flow_and_rejections_move_no_money(SagaWorld& world);

}  // namespace pix::test
