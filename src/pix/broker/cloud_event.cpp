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

std::optional<std::int64_t> parse_rfc3339_utc_ms(std::string_view text) {
  // 2026-11-28T16:24:20.123Z
  if (text.size() != 24 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':' ||
      text[19] != '.' || text[23] != 'Z') {
    return std::nullopt;
  }
  auto number = [&](std::size_t at, std::size_t len) -> int {
    int n = 0;
    for (std::size_t i = at; i < at + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return -1;
      n = n * 10 + (text[i] - '0');
    }
    return n;
  };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(5, 2) - 1;
  tm.tm_mday = number(8, 2);
  tm.tm_hour = number(11, 2);
  tm.tm_min = number(14, 2);
  tm.tm_sec = number(17, 2);
  const int ms = number(20, 3);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 ||
      tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60 || ms < 0) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
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
