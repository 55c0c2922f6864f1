#include "pix/gateway/outbound.hpp"

namespace pix::gateway {

broker::OutboundEvent make_outbound_event(PublishCommand&& cmd, BrokerKind broker, std::string event_id,
                                          const std::string& source, const telemetry::TraceContext& trace,
                                          std::int64_t now_ms) {
  return broker::make_cloud_event(broker == BrokerKind::kKafka ? broker::Binding::kKafka : broker::Binding::kAmqp,
                                  std::string(domain::topic_name(cmd.topic)), std::move(cmd.record_key),
                                  std::move(cmd.payload), std::move(event_id), source, trace, now_ms);
}

}  // namespace pix::gateway
