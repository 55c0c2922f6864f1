#include "pix/telemetry/otlp.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "pix/telemetry/logging.hpp"

namespace pix::telemetry {
namespace {

void append_number(std::string& out, std::int64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// `"name":` with the comma before it unless it opens the object.
void member(std::string& out, std::string_view name) {
  if (out.back() != '{') out += ',';
  out += '"';
  out += name;
  out += "\":";
}

void append_attributes(std::string& out, const std::vector<Attribute>& attributes) {
  out += '[';
  for (const auto& a : attributes) append_attribute_json(out, a.key, a.value);
  out += ']';
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

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

namespace {

void attribute_head(std::string& out, std::string_view key) {
  if (!out.empty() && out.back() != '[') out += ',';
  out += R"({"key":)";
  append_json_string(out, key);
  out += R"(,"value":)";
}

}  // namespace

void append_attribute_json(std::string& out, std::string_view key, std::string_view value) {
  attribute_head(out, key);
  out += R"({"stringValue":)";
  append_json_string(out, value);
  out += "}}";
}

void append_attribute_json(std::string& out, std::string_view key, std::int64_t value) {
  attribute_head(out, key);
  out += R"({"intValue":")";  // int64: a string
  append_number(out, value);
  out += "\"}}";
}

void append_attribute_json(std::string& out, std::string_view key, bool value) {
  attribute_head(out, key);
  out += value ? R"({"boolValue":true}})" : R"({"boolValue":false}})";
}

void append_attribute_json(std::string& out, std::string_view key, double value) {
  attribute_head(out, key);
  out += R"({"doubleValue":)";
  if (std::isfinite(value)) {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
  } else {
    out += std::isnan(value) ? R"("NaN")" : (value > 0 ? R"("Infinity")" : R"("-Infinity")");
  }
  out += "}}";
}

void append_attribute_json(std::string& out, std::string_view key, const Attribute::Value& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          append_attribute_json(out, key, std::string_view(v));
        } else {
          append_attribute_json(out, key, v);
        }
      },
      value);
}

std::size_t open_span_json(std::string& out, std::string_view trace_id, std::string_view span_id,
                           std::string_view parent_span_id, std::string_view name, SpanKind kind,
                           std::int64_t start_unix_nano) {
  out += '{';
  member(out, "traceId");
  append_json_string(out, trace_id);
  member(out, "spanId");
  append_json_string(out, span_id);
  if (!parent_span_id.empty()) {
    member(out, "parentSpanId");
    append_json_string(out, parent_span_id);
  }
  member(out, "name");
  append_json_string(out, name);
  member(out, "kind");
  append_number(out, static_cast<int>(kind));
  member(out, "startTimeUnixNano");
  out += '"';
  append_number(out, start_unix_nano);
  out += '"';
  const std::size_t mark = out.size();
  out += R"(,"attributes":[)";
  return mark;
}

void close_span_json(std::string& out, std::size_t attributes_mark, std::int64_t end_unix_nano,
                     const std::vector<TraceContext>& links, SpanStatus status, std::string_view status_message) {
  if (out.back() == '[') {
    out.resize(attributes_mark);  // no attribute: the field is left out
  } else {
    out += ']';
  }
  member(out, "endTimeUnixNano");
  out += '"';
  append_number(out, end_unix_nano);
  out += '"';
  if (!links.empty()) {
    member(out, "links");
    out += '[';
    for (const auto& l : links) {
      if (out.back() != '[') out += ',';
      out += R"({"traceId":)";
      append_json_string(out, l.trace_id);
      out += R"(,"spanId":)";
      append_json_string(out, l.span_id);
      out += '}';
    }
    out += ']';
  }
  if (status != SpanStatus::kUnset) {
    member(out, "status");
    out += R"({"code":)";
    append_number(out, static_cast<int>(status));
    if (status == SpanStatus::kError && !status_message.empty()) {
      out += R"(,"message":)";
      append_json_string(out, status_message);
    }
    out += '}';
  }
  out += '}';
}

void append_span_json(std::string& out, const SpanData& s) {
  const std::size_t mark =
      open_span_json(out, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.start_unix_nano);
  for (const auto& a : s.attributes) append_attribute_json(out, a.key, a.value);
  if (!s.encoded_attributes.empty()) {
    if (out.back() != '[') out += ',';
    out += s.encoded_attributes;
  }
  close_span_json(out, mark, s.end_unix_nano, s.links, s.status, s.status_message);
}

std::string wrap_spans_json(const Resource& resource, const std::vector<std::string>& spans,
                            std::string_view scope_version) {
  std::size_t size = 256;
  for (const auto& s : spans) size += s.size() + 1;
  std::string out;
  out.reserve(size);
  out += R"({"resourceSpans":[{"resource":{"attributes":)";
  append_attributes(out, resource.attributes);
  out += R"(},"scopeSpans":[{"scope":{"name":"pix-pubsub","version":)";
  append_json_string(out, scope_version);
  out += R"(},"spans":[)";
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i) out += ',';
    out += spans[i];
  }
  out += "]}]}]}";
  return out;
}

std::string encode_otlp_json(const Resource& resource, const std::vector<SpanData>& spans,
                             std::string_view scope_version) {
  std::vector<std::string> encoded;
  encoded.reserve(spans.size());
  for (const auto& s : spans) append_span_json(encoded.emplace_back(), s);
  return wrap_spans_json(resource, encoded, scope_version);
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
