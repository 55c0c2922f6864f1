#pragma once
/// @file How a validated request becomes a message on the wire.

#include <string>

#include "pix/broker/cloud_event.hpp"
#include "pix/gateway/config.hpp"
#include "pix/gateway/publish_request.hpp"

namespace pix::gateway {

/// The request's event: record key = PublishCommand::record_key, payload = `value`, CloudEvents headers in the
/// broker's binding, `traceparent` continuing the caller's trace.
broker::OutboundEvent make_outbound_event(PublishCommand&& cmd, BrokerKind broker, std::string event_id,
                                          const std::string& source, const telemetry::TraceContext& trace,
                                          std::int64_t now_ms);

}  // namespace pix::gateway
