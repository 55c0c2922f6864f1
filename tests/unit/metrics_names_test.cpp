// The exported metric names must match docs/metrics.txt, the list dashboards and alerts use.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "pix/gateway/server.hpp"
#include "pix/saga/provenance.hpp"
#include "pix/saga/stage.hpp"

namespace pix {
namespace {

class IdlePublisher final : public broker::Publisher {
 public:
  void publish(broker::OutboundEvent, broker::PublishCallback done) override {
    done({broker::PublishStatus::kBrokerUnavailable, "idle", -1, -1});
  }
  void probe(broker::ProbeCallback done) override { done(false, "idle"); }
  std::size_t drain(std::chrono::milliseconds) override { return 0; }
  std::size_t in_flight() const noexcept override { return 0; }
};

std::set<std::string> documented(const std::string& kind) {
  std::ifstream in(PIX_SOURCE_DIR "/docs/metrics.txt");
  EXPECT_TRUE(in) << "docs/metrics.txt is missing";
  std::set<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string k, name;
    fields >> k >> name;
    if (k == kind) names.insert(name);
  }
  return names;
}

void expect_exported(const telemetry::Registry& registry, const std::string& kind) {
  const auto exported = registry.family_names();
  EXPECT_EQ(std::set<std::string>(exported.begin(), exported.end()), documented(kind)) << kind;
  // Every family is visible from the first scrape, before any traffic.
  const std::string text = registry.render();
  for (const auto& name : exported) EXPECT_NE(text.find("# TYPE " + name + " "), std::string::npos) << name;
}

TEST(MetricNames, GatewayExportsExactlyTheDocumentedFamilies) {
  for (auto broker : {gateway::BrokerKind::kKafka, gateway::BrokerKind::kRabbit}) {
    boost::asio::io_context io;
    telemetry::Registry registry;
    IdlePublisher publisher;
    gateway::GatewayConfig config;
    config.broker = broker;
    gateway::Server server(io, config, publisher, registry);
    expect_exported(registry, "gateway");
  }
}

TEST(MetricNames, StagesExportExactlyTheDocumentedFamilies) {
  telemetry::Registry registry;
  telemetry::register_build_info(registry, "settlement");
  IdlePublisher publisher;
  saga::StageOptions options;
  options.name = "settlement";
  options.consumer.bootstrap_servers = "127.0.0.1:1";  // never contacted: the stage is not run
  options.consumer.topics = {"pix.payment.validated"};
  // As settlement runs: its input verified as anti-fraud's decisions, its outputs signed.
  auto provenance = std::make_shared<saga::Provenance>();
  provenance->sign = security::parse_decision_key(security::generate_decision_key_json("settlement"));
  provenance->verify.emplace(std::vector<security::DecisionKey>{security::parse_decision_key(
                                 security::generate_decision_key_json("antifraud"))},
                             "antifraud");
  saga::KafkaStage stage(
      options,
      saga::with_provenance(
          provenance, "settlement", [](const kafka::ConsumedRecord&) { return saga::HandlerResult{}; }, registry),
      publisher, nullptr, registry);
  expect_exported(registry, "stage");
}

}  // namespace
}  // namespace pix
