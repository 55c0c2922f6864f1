#include "pix/gateway/publisher_factory.hpp"

#include <stdexcept>

#include "pix/amqp/confirm_publisher.hpp"
#include "pix/amqp/url.hpp"
#include "pix/kafka/producer.hpp"

namespace pix::gateway {

std::unique_ptr<broker::Publisher> make_publisher(const GatewayConfig& config) {
  if (config.broker == BrokerKind::kRabbit) {
    amqp::ConfirmPublisher::Options o;
    o.url = config.rabbit;
    o.exchange = config.exchange;
    o.max_in_flight = config.max_in_flight;
    o.confirm_timeout = config.publish_timeout;
    o.connection_name = config.service_name();
    return std::make_unique<amqp::ConfirmPublisher>(std::move(o));
  }
  kafka::ProducerOptions o;
  o.bootstrap_servers = config.kafka_bootstrap;
  o.client_id = config.service_name();
  o.linger_ms = config.kafka_linger_ms;
  o.ack_timeout = config.publish_timeout;
  o.max_in_flight = config.max_in_flight;
  o.extra = config.kafka_options;
  return std::make_unique<kafka::KafkaPublisher>(std::move(o));
}

std::string describe_broker(const GatewayConfig& config) {
  if (config.broker == BrokerKind::kRabbit) {
    return "rabbitmq " + config.rabbit.redacted() + " exchange " + config.exchange;
  }
  const auto protocol = config.kafka_options.find("security.protocol");
  return "kafka " + config.kafka_bootstrap +
         (protocol != config.kafka_options.end() ? " (" + protocol->second + ")" : std::string()) +
         (config.kafka_principal.empty() ? std::string() : " as " + config.kafka_principal);
}

}  // namespace pix::gateway
