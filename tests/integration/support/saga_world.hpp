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
#include "support/secure_env.hpp"
#include "support/service_process.hpp"

namespace pix::test {

inline constexpr int kSagaPopulation = 20;
inline constexpr std::int64_t kSagaPopulationCents = 5'000'000;  // R$50,000.00 each
inline constexpr int kSagaDemoAccounts = 5;                      // alice..erin, funded by default too

class SagaWorld {
 public:
  /// Plain brokers, or the secure profile when `secure` is given.
  explicit SagaWorld(std::optional<SecureEnv> secure = std::nullopt);
  ~SagaWorld();
  SagaWorld(const SagaWorld&) = delete;
  SagaWorld& operator=(const SagaWorld&) = delete;

  std::string ledger_db() const;
  /// The key file `stage` (antifraud, settlement) signs its decisions with.
  std::string decision_key(const std::string& stage) const;
  std::string audit_db() const;
  void start_stage(const std::string& stage);
  void start_all();
  ServiceProcess& stage(const std::string& name) { return *stages_.at(name); }
  const std::string& prefix() const { return prefix_; }
  bool secure() const { return secure_.has_value(); }
  /// The test restarts RabbitMQ: the queues settle before the destructor deletes them.
  void broker_restarted() { broker_restarted_ = true; }

  /// A client of the gateway (HTTPS with the profile's CA when secure).
  std::unique_ptr<HttpClient> api_client() const;
  /// POSTs a payment body to /kafka (with a bearer token when secure).
  Reply post(HttpClient& client, const std::string& body) const;

  /// librdkafka properties of `component` (empty on the plain brokers) and the bootstrap.
  std::map<std::string, std::string> kafka_properties(const std::string& component) const;
  std::string bootstrap() const;

  saga::SagaReport report() const;
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
  std::vector<std::string> stage_args(const std::string& stage) const;
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
  std::unique_ptr<GatewayProcess> api_;
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
