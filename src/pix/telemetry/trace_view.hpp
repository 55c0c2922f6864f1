#pragma once
/// @file One trace as Jaeger's HTTP query API answers it (`/api/traces/<id>` and the search
/// `/api/traces?service=...`, both `{"data":[trace...],"errors":...}`), taken apart and drawn as a
/// text waterfall for `pix-admin trace`. Pure: no I/O; the request targets are built here too so
/// that what is asked of Jaeger is tested with what is read back.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pix::telemetry {

/// @brief One span of a fetched trace, in the words a reader of the waterfall needs.
struct TraceSpan {
  std::string span_id;
  std::string parent_span_id;  ///< CHILD_OF, else FOLLOWS_FROM; "" for a root. May name a span not in the trace.
  std::string service;         ///< the process's serviceName
  std::string name;            ///< operationName
  std::string kind;            ///< the `span.kind` tag (server, client, producer, consumer, internal); "" if absent
  std::int64_t start_us = 0;   ///< unix microseconds
  std::int64_t duration_us = 0;
  bool error = false;          ///< otel.status_code=ERROR or error=true
  std::string status_message;  ///< otel.status_description (or error.type) of an error
  /// The other tags, values as text, in Jaeger's order.
  std::vector<std::pair<std::string, std::string>> tags;

  /// The value of tag `key`, if the span has it.
  std::optional<std::string> tag(std::string_view key) const;
};

/// @brief A trace: its spans in the order Jaeger sent them, and the trace object as JSON.
struct Trace {
  std::string trace_id;
  std::vector<TraceSpan> spans;
  std::string raw_json;  ///< the trace object as received (re-serialized), for --json

  std::int64_t start_us() const;  ///< earliest span start (0 without spans)
  std::int64_t end_us() const;    ///< latest span end
};

/// @brief What a query-API answer held: its traces, and why it could not be read or what
/// Jaeger reported in `errors` (both may be present: Jaeger can answer part of a question).
struct JaegerTraces {
  std::vector<Trace> traces;
  std::string error;
};

/// Parses a `/api/traces...` answer. Malformed JSON, or a missing `data` array, gives no traces
/// and an error; entries of `errors` are joined into `error` ("code: msg; ...").
JaegerTraces parse_jaeger_traces(std::string_view body);

/// The service names of a `/api/services` answer; nullopt, with `error` set, if it is not one.
std::optional<std::vector<std::string>> parse_jaeger_services(std::string_view body, std::string& error);

/// `traces` without repeated trace ids (the first copy is kept), the most recent start first.
std::vector<Trace> distinct_most_recent_first(std::vector<Trace> traces);

/// A query-API answer holding `traces` (their `raw_json`): what --json prints for a search.
std::string jaeger_answer_json(const std::vector<Trace>& traces);

/// @brief How the waterfall is drawn.
struct WaterfallOptions {
  int bar_width = 30;  ///< cells of the timeline bar; every span gets at least one
};

/// The waterfall: a header (trace id, span count, services, total duration), a column header,
/// then one line per span in tree order (children after their parent, by start; a span whose
/// parent is missing starts a tree of its own, marked), indented by depth: start offset and
/// duration in ms, the bar, service: name, kind, OK or ERROR: reason, key attributes.
std::string render_waterfall(const Trace& trace, const WaterfallOptions& options = {});

/// True for a trace id as the query API takes it here: 32 lowercase hex characters.
bool is_trace_id(std::string_view text);

/// A search lookback as the Jaeger UI writes it (`30m`, `1h`, `24h`, `2d`, `1w`) in microseconds;
/// nullopt for anything else (no unit, zero, more than 52 weeks).
std::optional<std::int64_t> parse_lookback(std::string_view text);

/// RFC 3986 percent-encoding of everything but the unreserved characters.
std::string percent_encode(std::string_view text);

/// The search (`/api/traces?...`, to follow the query API's base path) for the traces of
/// `service` whose spans carry `pix.transaction_id` = `transaction_id`. Jaeger 1.x's `/api/traces`
/// ignores `lookback` and searches from `start` (default: 2 days back) to `end`, so the window is
/// sent as both, ending at `now_us`; `lookback` goes along as the Jaeger UI sends it. Throws
/// std::invalid_argument if parse_lookback() refuses `lookback`.
std::string transaction_search_target(std::string_view service, std::string_view transaction_id,
                                      std::string_view lookback, std::int64_t now_us, int limit = 20);

}  // namespace pix::telemetry
