#pragma once
/// @file How a validated request becomes a message on the wire (CloudEvents binary mode + traceparent).

#include <string>

#include "pix/broker/publisher.hpp"
#include "pix/gateway/config.hpp"
#include "pix/gateway/publish_request.hpp"
#include "pix/telemetry/trace_context.hpp"

namespace pix::gateway {

/// RFC 3339 UTC with milliseconds, e.g. 2026-11-28T16:24:20.123Z.
std::string rfc3339_utc_ms(std::int64_t epoch_ms);

/// Build the event: Kafka gets `ce_*` headers, AMQP `cloudEvents_*` (there is no AMQP 0-9-1
/// binding of CloudEvents); both get `traceparent`.
broker::OutboundEvent make_outbound_event(PublishCommand&& cmd, BrokerKind broker, std::string event_id,
                                          const std::string& source, const telemetry::TraceContext& trace,
                                          std::int64_t now_ms);

}  // namespace pix::gateway
