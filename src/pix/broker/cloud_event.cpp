#include "pix/broker/cloud_event.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

namespace pix::broker {

std::string rfc3339_utc_ms(std::int64_t epoch_ms) {
  const std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(epoch_ms % 1000));
}

std::int64_t now_epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

OutboundEvent make_cloud_event(Binding binding, std::string topic, std::string key, std::string payload, std::string id,
                               const std::string& source, const telemetry::TraceContext& trace, std::int64_t time_ms) {
  OutboundEvent ev;
  ev.topic = std::move(topic);
  ev.key = std::move(key);
  ev.payload = std::move(payload);
  ev.id = std::move(id);
  ev.timestamp_ms = time_ms;
  const char* prefix = binding == Binding::kKafka ? "ce_" : "cloudEvents_";
  auto add = [&](const char* name, std::string value) {
    ev.headers.push_back({std::string(prefix) + name, std::move(value)});
  };
  ev.headers.reserve(8);
  add("specversion", "1.0");
  add("id", ev.id);
  add("source", source);
  add("type", ev.topic);
  add("time", rfc3339_utc_ms(time_ms));
  add("subject", ev.key);
  if (binding == Binding::kKafka) ev.headers.push_back({"content-type", ev.content_type});
  ev.headers.push_back({"traceparent", trace.to_traceparent()});
  return ev;
}

}  // namespace pix::broker
