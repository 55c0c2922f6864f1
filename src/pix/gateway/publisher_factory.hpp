#pragma once
/// @file Chooses and builds the broker publisher a gateway config asks for.

#include <memory>
#include <string>

#include "pix/broker/publisher.hpp"
#include "pix/gateway/config.hpp"

namespace pix::gateway {

/// The Kafka or RabbitMQ publisher, configured from `config`. Throws on invalid settings.
std::unique_ptr<broker::Publisher> make_publisher(const GatewayConfig& config);

/// "kafka 127.0.0.1:9092" / "rabbitmq amqp://guest:***@127.0.0.1:5672/ exchange pix": for logs.
std::string describe_broker(const GatewayConfig& config);

}  // namespace pix::gateway
