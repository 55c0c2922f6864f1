#include "pix/gateway/outbound.hpp"

#include <ctime>

#include <fmt/format.h>

namespace pix::gateway {

std::string rfc3339_utc_ms(std::int64_t epoch_ms) {
  const std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(epoch_ms % 1000));
}

broker::OutboundEvent make_outbound_event(PublishCommand&& cmd, BrokerKind broker, std::string event_id,
                                          const std::string& source, const telemetry::TraceContext& trace,
                                          std::int64_t now_ms) {
  broker::OutboundEvent ev;
  ev.topic = std::string(domain::topic_name(cmd.topic));
  ev.key = std::move(cmd.transaction_id);
  ev.payload = std::move(cmd.payload);
  ev.id = std::move(event_id);
  ev.timestamp_ms = now_ms;
  const char* prefix = broker == BrokerKind::kKafka ? "ce_" : "cloudEvents_";
  auto add = [&](const char* name, std::string value) {
    ev.headers.push_back({std::string(prefix) + name, std::move(value)});
  };
  ev.headers.reserve(8);
  add("specversion", "1.0");
  add("id", ev.id);
  add("source", source);
  add("type", ev.topic);
  add("time", rfc3339_utc_ms(now_ms));
  add("subject", ev.key);
  if (broker == BrokerKind::kKafka) {
    ev.headers.push_back({"content-type", ev.content_type});
  }
  ev.headers.push_back({"traceparent", trace.to_traceparent()});
  return ev;
}

}  // namespace pix::gateway
