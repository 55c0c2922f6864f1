#pragma once
/// @file CloudEvents binary-mode events: the one shape every producer here puts on the wire.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pix/broker/publisher.hpp"
#include "pix/telemetry/trace_context.hpp"

namespace pix::broker {

/// Which header prefix the binding uses: Kafka `ce_`, AMQP `cloudEvents_` (CloudEvents has no
/// AMQP 0-9-1 binding; this is the prefix its AMQP 1.0 binding uses).
enum class Binding { kKafka, kAmqp };

/// RFC 3339 UTC with milliseconds, e.g. 2026-11-28T16:24:20.123Z.
std::string rfc3339_utc_ms(std::int64_t epoch_ms);

/// The inverse of rfc3339_utc_ms(): milliseconds since the epoch of exactly that shape
/// (YYYY-MM-DDTHH:MM:SS.mmmZ), or nullopt for anything else.
std::optional<std::int64_t> parse_rfc3339_utc_ms(std::string_view text);

/// Milliseconds since the Unix epoch, now.
std::int64_t now_epoch_ms();

/// An event with the CloudEvents attributes (specversion, id, source, type = topic, time,
/// subject = key), `content-type` (Kafka) and `traceparent`.
OutboundEvent make_cloud_event(Binding binding, std::string topic, std::string key, std::string payload, std::string id,
                               const std::string& source, const telemetry::TraceContext& trace, std::int64_t time_ms);

}  // namespace pix::broker
