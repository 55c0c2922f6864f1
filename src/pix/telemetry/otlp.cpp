#include "pix/telemetry/otlp.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace pix::telemetry {
namespace {

namespace json = boost::json;

json::object any_value(const Attribute::Value& v);

json::array attributes_json(const std::vector<Attribute>& attributes) {
  json::array out;
  for (const auto& a : attributes) out.push_back(json::object{{"key", a.key}, {"value", any_value(a.value)}});
  return out;
}

json::object any_value(const Attribute::Value& v) {
  json::object o;
  if (const auto* s = std::get_if<std::string>(&v)) o["stringValue"] = *s;
  if (const auto* b = std::get_if<bool>(&v)) o["boolValue"] = *b;
  if (const auto* i = std::get_if<std::int64_t>(&v)) o["intValue"] = std::to_string(*i);  // int64: a string
  if (const auto* d = std::get_if<double>(&v)) o["doubleValue"] = *d;
  return o;
}

json::object span_json(const SpanData& s) {
  json::object o;
  o["traceId"] = s.trace_id;
  o["spanId"] = s.span_id;
  if (!s.parent_span_id.empty()) o["parentSpanId"] = s.parent_span_id;
  o["name"] = s.name;
  o["kind"] = static_cast<int>(s.kind);
  o["startTimeUnixNano"] = std::to_string(s.start_unix_nano);
  o["endTimeUnixNano"] = std::to_string(s.end_unix_nano);
  if (!s.attributes.empty()) o["attributes"] = attributes_json(s.attributes);
  if (!s.links.empty()) {
    json::array links;
    for (const auto& l : s.links) links.push_back(json::object{{"traceId", l.trace_id}, {"spanId", l.span_id}});
    o["links"] = std::move(links);
  }
  if (s.status != SpanStatus::kUnset) {
    json::object status{{"code", static_cast<int>(s.status)}};
    if (s.status == SpanStatus::kError && !s.status_message.empty()) status["message"] = s.status_message;
    o["status"] = std::move(status);
  }
  return o;
}

/// The last 16 hex digits of a trace id as a number; nullopt if they are not hex.
std::optional<std::uint64_t> low_bits(std::string_view trace_id) {
  if (trace_id.size() < 16) return std::nullopt;
  std::uint64_t v = 0;
  const auto tail = trace_id.substr(trace_id.size() - 16);
  const auto [end, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), v, 16);
  if (ec != std::errc() || end != tail.data() + tail.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string encode_otlp_json(const Resource& resource, const std::vector<SpanData>& spans,
                             std::string_view scope_version) {
  json::array span_list;
  for (const auto& s : spans) span_list.push_back(span_json(s));
  json::object scope{{"name", "pix-pubsub"}, {"version", scope_version}};
  json::object scope_spans{{"scope", std::move(scope)}, {"spans", std::move(span_list)}};
  json::object resource_spans{{"resource", json::object{{"attributes", attributes_json(resource.attributes)}}},
                              {"scopeSpans", json::array{std::move(scope_spans)}}};
  return json::serialize(json::object{{"resourceSpans", json::array{std::move(resource_spans)}}});
}

Sampler::Sampler(double ratio, bool parent_based)
    : ratio_(std::clamp(std::isnan(ratio) ? 0.0 : ratio, 0.0, 1.0)), parent_based_(parent_based) {
  // ratio x 2^64, without overflowing at 1.0 (which samples everything, handled in sample()).
  threshold_ = ratio_ >= 1.0 ? UINT64_MAX : static_cast<std::uint64_t>(std::ldexp(ratio_, 64));
}

bool Sampler::sample(const std::optional<TraceContext>& parent, std::string_view trace_id) const noexcept {
  if (parent && parent_based_) return parent->sampled;
  if (ratio_ >= 1.0) return true;
  if (ratio_ <= 0.0) return false;
  const auto v = low_bits(trace_id);
  return v && *v < threshold_;
}

std::optional<Sampler> sampler_from(std::string_view sampler, std::string_view arg, std::string& error) {
  double ratio = 1.0;
  if (!arg.empty()) {
    const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ratio);
    if (ec != std::errc() || end != arg.data() + arg.size() || ratio < 0.0 || ratio > 1.0) {
      error = "OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, not '" + std::string(arg) + "'";
      return std::nullopt;
    }
  }
  if (sampler.empty() || sampler == "parentbased_traceidratio") return Sampler(ratio);
  if (sampler == "traceidratio") return Sampler(ratio, false);
  if (sampler == "parentbased_always_on") return Sampler(1.0);
  if (sampler == "parentbased_always_off") return Sampler(0.0);
  if (sampler == "always_on") return Sampler(1.0, false);
  if (sampler == "always_off") return Sampler(0.0, false);
  error = "OTEL_TRACES_SAMPLER '" + std::string(sampler) +
          "' is not one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, "
          "parentbased_traceidratio";
  return std::nullopt;
}

}  // namespace pix::telemetry
