#pragma once
/// @file W3C Trace Context (`traceparent`), carried from HTTP requests onto every event.

#include <optional>
#include <string>
#include <string_view>

namespace pix::telemetry {

/// @brief The parts of a traceparent header (version 00).
struct TraceContext {
  std::string trace_id;  ///< 32 lowercase hex, not all zero
  std::string span_id;   ///< 16 lowercase hex, not all zero
  bool sampled = true;

  /// `00-<trace_id>-<span_id>-<flags>`
  std::string to_traceparent() const;

  /// A new span in the same trace (or a new trace when there is no parent).
  static TraceContext child_of(const std::optional<TraceContext>& parent);
};

/// Parse a traceparent header; nullopt for anything malformed (which then starts a new trace).
std::optional<TraceContext> parse_traceparent(std::string_view header);

}  // namespace pix::telemetry
