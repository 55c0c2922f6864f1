#pragma once
/// @file Spans as OTLP/JSON (the OpenTelemetry protocol's JSON encoding of
/// ExportTraceServiceRequest), and the sampling decision. opentelemetry-cpp is not packaged here,
/// so the exporter is ours; this file is its pure part: what a span holds, how it is written on
/// the wire, and whether a trace is sampled. Rules followed (OTLP specification, JSON encoding):
/// trace and span ids as lowercase hex (not base64), enums as integers, 64-bit integers (times,
/// intValue) as decimal strings, field names in lowerCamelCase, empty fields left out.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pix/telemetry/trace_context.hpp"

namespace pix::telemetry {

/// OTLP's SpanKind values.
enum class SpanKind : int { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };
/// OTLP's Status.code values.
enum class SpanStatus : int { kUnset = 0, kOk = 1, kError = 2 };

/// @brief One attribute; the value keeps its OTLP type (string, bool, int64, double).
struct Attribute {
  using Value = std::variant<std::string, bool, std::int64_t, double>;
  std::string key;
  Value value;
};

/// @brief A finished span, as the exporter sends it.
struct SpanData {
  std::string trace_id;        ///< 32 lowercase hex
  std::string span_id;         ///< 16 lowercase hex
  std::string parent_span_id;  ///< "" for a root span
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  std::int64_t start_unix_nano = 0;
  std::int64_t end_unix_nano = 0;
  std::vector<Attribute> attributes;
  /// More attributes, already encoded (comma-separated OTLP/JSON KeyValue objects).
  std::string encoded_attributes;
  std::vector<TraceContext> links;  ///< e.g. a consumer's link to the producer's context
  SpanStatus status = SpanStatus::kUnset;
  std::string status_message;  ///< only with kError
};

/// @brief Who emits the spans: OTLP resource attributes (service.name, service.version, ...).
struct Resource {
  std::vector<Attribute> attributes;
};

/// The ExportTraceServiceRequest body for `spans` (one resource, one scope `pix-pubsub`).
std::string encode_otlp_json(const Resource& resource, const std::vector<SpanData>& spans,
                             std::string_view scope_version);

/// The same in two steps, as the exporter does it: each span encoded once, when it ends
/// (append_span_json), and a batch of encoded spans wrapped into one request (wrap_spans_json).
void append_span_json(std::string& out, const SpanData& span);

/// A span written as it is recorded, into one buffer: open_span_json writes everything known at
/// the start and opens the attribute list (returning a mark), append_attribute_json adds to it,
/// close_span_json ends the list (or removes it when empty) and writes the rest.
std::size_t open_span_json(std::string& out, std::string_view trace_id, std::string_view span_id,
                           std::string_view parent_span_id, std::string_view name, SpanKind kind,
                           std::int64_t start_unix_nano);
void close_span_json(std::string& out, std::size_t attributes_mark, std::int64_t end_unix_nano,
                     const std::vector<TraceContext>& links, SpanStatus status, std::string_view status_message);
std::string wrap_spans_json(const Resource& resource, const std::vector<std::string>& spans,
                            std::string_view scope_version);

/// Appends `s` as a JSON string literal, quotes included (control characters escaped, UTF-8 as is).
void append_json_string(std::string& out, std::string_view s);
/// Appends one OTLP/JSON KeyValue, after a comma unless `out` is empty or ends with '['.
void append_attribute_json(std::string& out, std::string_view key, const Attribute::Value& value);
void append_attribute_json(std::string& out, std::string_view key, std::string_view value);
void append_attribute_json(std::string& out, std::string_view key, std::int64_t value);
void append_attribute_json(std::string& out, std::string_view key, bool value);
void append_attribute_json(std::string& out, std::string_view key, double value);

/// @brief `OTEL_TRACES_SAMPLER`'s samplers. Parent-based (the default, parentbased_traceidratio):
/// a span with a parent follows the parent's sampled flag. A root span, or any span when not
/// parent-based, is sampled when its trace id falls under the ratio: a pure function of the id
/// (its last 8 bytes against ratio x 2^64), so every process decides the same for the same trace.
class Sampler {
 public:
  /// `ratio` in [0, 1]; outside it is clamped.
  explicit Sampler(double ratio, bool parent_based = true);
  bool sample(const std::optional<TraceContext>& parent, std::string_view trace_id) const noexcept;
  double ratio() const noexcept { return ratio_; }
  bool parent_based() const noexcept { return parent_based_; }

 private:
  double ratio_;
  bool parent_based_;
  std::uint64_t threshold_;  // sample when the id's last 8 bytes, as a number, are below it
};

/// Reads `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` values: "always_on", "always_off",
/// "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"
/// (the default, with ratio 1). Nullopt, with `error` naming the variable, for anything else.
std::optional<Sampler> sampler_from(std::string_view sampler, std::string_view arg, std::string& error);

}  // namespace pix::telemetry
