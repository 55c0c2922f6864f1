#include "pix/telemetry/trace_view.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <ctime>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace pix::telemetry {
namespace {

namespace json = boost::json;

/// Shown on a span's line when present, in this order (then every `pix.*` tag).
constexpr std::array<std::string_view, 6> kKeyAttributes = {
    "messaging.destination.name", "messaging.destination.partition.id",
    "messaging.kafka.offset",     "messaging.rabbitmq.destination.routing_key",
    "http.response.status_code",  "http.route"};
/// The tree column stops growing here; a longer service: name pushes its own line's columns only.
constexpr std::size_t kMaxTreeColumn = 72;

std::string string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t int_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return 0;
}

const json::array* array_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_array() ? &v->get_array() : nullptr;
}

/// A tag value as a reader expects it: strings bare, numbers in decimal, no exponent for doubles.
std::string value_text(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return std::string(v.get_string());
    case json::kind::bool_:
      return v.get_bool() ? "true" : "false";
    case json::kind::int64:
      return std::to_string(v.get_int64());
    case json::kind::uint64:
      return std::to_string(v.get_uint64());
    case json::kind::double_:
      return fmt::format("{}", v.get_double());
    case json::kind::null:
      return "null";
    default:
      return json::serialize(v);
  }
}

/// processID -> serviceName, from the trace's `processes`.
std::map<std::string, std::string> services_by_process(const json::object& trace) {
  std::map<std::string, std::string> out;
  const auto* processes = trace.if_contains("processes");
  if (!processes || !processes->is_object()) return out;
  for (const auto& [id, process] : processes->get_object()) {
    if (process.is_object()) out.emplace(std::string(id), string_field(process.get_object(), "serviceName"));
  }
  return out;
}

/// The first CHILD_OF reference, else the first FOLLOWS_FROM, else the deprecated parentSpanID.
std::string parent_of(const json::object& span) {
  std::string follows_from;
  if (const auto* refs = array_field(span, "references")) {
    for (const auto& ref : *refs) {
      if (!ref.is_object()) continue;
      const auto type = string_field(ref.get_object(), "refType");
      if (type == "CHILD_OF") return string_field(ref.get_object(), "spanID");
      if (type == "FOLLOWS_FROM" && follows_from.empty()) follows_from = string_field(ref.get_object(), "spanID");
    }
  }
  return follows_from.empty() ? string_field(span, "parentSpanID") : follows_from;
}

/// Files one tag: the kind and status tags become fields, the others stay tags.
void apply_tag(TraceSpan& span, std::string key, std::string value) {
  if (key == "span.kind") {
    span.kind = std::move(value);
  } else if (key == "otel.status_code") {
    span.error = span.error || value == "ERROR";
  } else if (key == "error") {
    span.error = span.error || value == "true";
  } else if (key == "otel.status_description") {
    span.status_message = std::move(value);
  } else {
    span.tags.emplace_back(std::move(key), std::move(value));
  }
}

std::string service_of(const json::object& span, const std::map<std::string, std::string>& services) {
  if (const auto* process = span.if_contains("process"); process && process->is_object()) {
    return string_field(process->get_object(), "serviceName");
  }
  const auto it = services.find(string_field(span, "processID"));
  return it == services.end() ? std::string() : it->second;
}

TraceSpan parse_span(const json::object& o, const std::map<std::string, std::string>& services) {
  TraceSpan span;
  span.span_id = string_field(o, "spanID");
  span.parent_span_id = parent_of(o);
  span.service = service_of(o, services);
  span.name = string_field(o, "operationName");
  span.start_us = int_field(o, "startTime");
  span.duration_us = int_field(o, "duration");
  if (const auto* tags = array_field(o, "tags")) {
    for (const auto& tag : *tags) {
      if (!tag.is_object()) continue;
      const auto* value = tag.get_object().if_contains("value");
      apply_tag(span, string_field(tag.get_object(), "key"), value ? value_text(*value) : std::string());
    }
  }
  if (!span.error) span.status_message.clear();
  if (span.error && span.status_message.empty()) span.status_message = span.tag("error.type").value_or("");
  return span;
}

Trace parse_trace(const json::object& o) {
  Trace trace;
  trace.trace_id = string_field(o, "traceID");
  trace.raw_json = json::serialize(o);
  const auto services = services_by_process(o);
  if (const auto* spans = array_field(o, "spans")) {
    for (const auto& span : *spans) {
      if (span.is_object()) trace.spans.push_back(parse_span(span.get_object(), services));
    }
  }
  return trace;
}

/// Jaeger's `errors`: [{"code":404,"msg":"trace not found"}, ...] as "404 trace not found; ...".
std::string errors_text(const json::value* errors) {
  if (!errors || !errors->is_array()) return {};
  std::string out;
  for (const auto& e : errors->get_array()) {
    if (!out.empty()) out += "; ";
    if (!e.is_object()) {
      out += value_text(e);
      continue;
    }
    const auto code = int_field(e.get_object(), "code");
    out += (code != 0 ? std::to_string(code) + " " : std::string()) + string_field(e.get_object(), "msg");
  }
  return out;
}

/// @brief A span's place in the waterfall.
struct Row {
  const TraceSpan* span;
  int depth;
  bool orphan;  ///< names a parent that is not in the trace
};

/// Spans in depth-first order, siblings by start. Every span appears once, even in a malformed
/// trace: a missing parent makes a root, and spans caught in a reference cycle start one too.
std::vector<Row> tree_order(const std::vector<TraceSpan>& spans) {
  std::unordered_map<std::string_view, std::size_t> index;
  for (std::size_t i = 0; i < spans.size(); ++i) index.emplace(spans[i].span_id, i);
  std::vector<std::vector<std::size_t>> children(spans.size());
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const auto parent = spans[i].parent_span_id.empty() ? index.end() : index.find(spans[i].parent_span_id);
    if (parent != index.end() && parent->second != i) {
      children[parent->second].push_back(i);
    } else {
      roots.push_back(i);
    }
  }
  const auto by_start = [&](std::size_t a, std::size_t b) {
    return spans[a].start_us != spans[b].start_us ? spans[a].start_us < spans[b].start_us : a < b;
  };
  for (auto& c : children) std::sort(c.begin(), c.end(), by_start);
  std::sort(roots.begin(), roots.end(), by_start);
  // After the roots, every span by start: only those that no root reaches (a cycle) are left.
  std::vector<std::size_t> all(spans.size());
  for (std::size_t i = 0; i < spans.size(); ++i) all[i] = i;
  std::sort(all.begin(), all.end(), by_start);

  std::vector<Row> rows;
  std::vector<bool> seen(spans.size(), false);
  std::vector<std::pair<std::size_t, int>> stack;
  const auto walk = [&](std::size_t root) {
    if (seen[root]) return;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      const auto [i, depth] = stack.back();
      stack.pop_back();
      if (seen[i]) continue;
      seen[i] = true;
      const bool orphan = depth == 0 && !spans[i].parent_span_id.empty() && !index.contains(spans[i].parent_span_id);
      rows.push_back(Row{&spans[i], depth, orphan});
      for (auto c = children[i].rbegin(); c != children[i].rend(); ++c) stack.emplace_back(*c, depth + 1);
    }
  };
  for (const auto r : roots) walk(r);
  for (const auto r : all) walk(r);
  return rows;
}

std::string format_ms(std::int64_t us) {
  return fmt::format("{:.1f}", static_cast<double>(us) / 1000.0);
}

/// A duration in ms: one decimal, three below a millisecond so that short spans don't read 0.0.
std::string format_duration(std::int64_t us) {
  return us >= 1000 || us == 0 ? format_ms(us) : fmt::format("{:.3f}", static_cast<double>(us) / 1000.0);
}

/// Columns a UTF-8 string takes (code points, every one taken as one column).
std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string pad(std::string text, std::size_t width) {
  const auto w = display_width(text);
  if (w < width) text.append(width - w, ' ');
  return text;
}

/// The span's cells on a timeline of `width` cells spanning [t0, t0 + total]: both ends rounded
/// to the nearest cell, so spans that end together end in the same cell; at least one cell.
std::string timeline_bar(const TraceSpan& span, std::int64_t t0, std::int64_t total, int width) {
  const auto cell = [&](std::int64_t t) {
    return total <= 0 ? 0 : static_cast<int>(std::llround(static_cast<double>(t - t0) * width / total));
  };
  const int from = std::clamp(cell(span.start_us), 0, width - 1);
  const int to = std::clamp(cell(span.start_us + span.duration_us), from + 1, width);
  std::string bar(static_cast<std::size_t>(width), ' ');
  std::fill(bar.begin() + from, bar.begin() + to, '#');
  return bar;
}

std::string status_text(const TraceSpan& span) {
  if (!span.error) return "OK";
  return span.status_message.empty() ? "ERROR" : "ERROR: " + span.status_message;
}

/// `key=value` for the key attributes the span has, then its `pix.*` tags.
std::string key_attributes(const TraceSpan& span) {
  std::string out;
  const auto add = [&](std::string_view key, std::string_view value) { out += fmt::format("  {}={}", key, value); };
  for (const auto key : kKeyAttributes) {
    if (const auto value = span.tag(key)) add(key, *value);
  }
  for (const auto& [key, value] : span.tags) {
    if (key.starts_with("pix.")) add(key, value);
  }
  return out;
}

std::string tree_label(const Row& row) {
  return std::string(static_cast<std::size_t>(row.depth) * 2, ' ') + row.span->service + ": " + row.span->name;
}

/// The trace's first start as UTC wall-clock time, to the millisecond.
std::string wall_clock(std::int64_t unix_us) {
  const std::time_t seconds = static_cast<std::time_t>(unix_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return fmt::format("{}.{:03d} UTC", text, static_cast<int>(unix_us % 1'000'000 / 1000));
}

std::string header_line(const Trace& trace, const std::vector<Row>& rows) {
  std::vector<std::string> services;
  for (const auto& row : rows) {
    if (std::find(services.begin(), services.end(), row.span->service) == services.end()) {
      services.push_back(row.span->service);
    }
  }
  return fmt::format("trace {}  {} span{}  services: {}  total {} ms  started {}\n", trace.trace_id, trace.spans.size(),
                     trace.spans.size() == 1 ? "" : "s", fmt::join(services, ", "),
                     format_ms(trace.end_us() - trace.start_us()), wall_clock(trace.start_us()));
}

std::string span_line(const Row& row, std::int64_t t0, std::int64_t total, int width, std::size_t tree_width) {
  const TraceSpan& s = *row.span;
  std::string line =
      fmt::format("{:>9}  {:>9}  |{}|  {}  {:<8}  {}{}", format_ms(s.start_us - t0), format_duration(s.duration_us),
                  timeline_bar(s, t0, total, width), pad(tree_label(row), tree_width), s.kind.empty() ? "-" : s.kind,
                  status_text(s), key_attributes(s));
  if (row.orphan) line += fmt::format("  (parent {} is not in this trace)", s.parent_span_id);
  return line + "\n";
}

}  // namespace

std::optional<std::string> TraceSpan::tag(std::string_view key) const {
  for (const auto& [k, v] : tags) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::int64_t Trace::start_us() const {
  if (spans.empty()) return 0;
  return std::min_element(spans.begin(), spans.end(),
                          [](const auto& a, const auto& b) { return a.start_us < b.start_us; })
      ->start_us;
}

std::int64_t Trace::end_us() const {
  std::int64_t end = start_us();
  for (const auto& s : spans) end = std::max(end, s.start_us + s.duration_us);
  return end;
}

JaegerTraces parse_jaeger_traces(std::string_view body) {
  JaegerTraces out;
  json::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) {
    out.error = "not a Jaeger query-API answer (JSON object expected)";
    return out;
  }
  const auto& o = doc.get_object();
  out.error = errors_text(o.if_contains("errors"));
  const auto* data = o.if_contains("data");
  if (data && data->is_array()) {
    for (const auto& trace : data->get_array()) {
      if (trace.is_object()) out.traces.push_back(parse_trace(trace.get_object()));
    }
  } else if (out.error.empty() && !(data && data->is_null())) {
    out.error = "not a Jaeger query-API answer (no `data` array)";
  }
  return out;
}

std::optional<std::vector<std::string>> parse_jaeger_services(std::string_view body, std::string& error) {
  json::error_code ec;
  const json::value doc = json::parse(body, ec);
  const auto* data = !ec && doc.is_object() ? doc.get_object().if_contains("data") : nullptr;
  if (!data || !(data->is_array() || data->is_null())) {
    error = "not a Jaeger /api/services answer (no `data` array)";
    return std::nullopt;
  }
  std::vector<std::string> services;
  if (data->is_array()) {
    for (const auto& name : data->get_array()) {
      if (name.is_string()) services.emplace_back(name.get_string());
    }
  }
  return services;
}

std::vector<Trace> distinct_most_recent_first(std::vector<Trace> traces) {
  std::unordered_set<std::string> seen;
  std::vector<Trace> out;
  for (auto& trace : traces) {
    if (seen.insert(trace.trace_id).second) out.push_back(std::move(trace));
  }
  std::stable_sort(out.begin(), out.end(), [](const Trace& a, const Trace& b) { return a.start_us() > b.start_us(); });
  return out;
}

std::string jaeger_answer_json(const std::vector<Trace>& traces) {
  std::string out = "{\"data\":[";
  for (std::size_t i = 0; i < traces.size(); ++i) out += (i ? "," : "") + traces[i].raw_json;
  return out + fmt::format("],\"total\":{},\"limit\":0,\"offset\":0,\"errors\":null}}", traces.size());
}

std::string render_waterfall(const Trace& trace, const WaterfallOptions& options) {
  const int width = std::max(1, options.bar_width);
  const auto rows = tree_order(trace.spans);
  std::size_t tree_width = 0;
  for (const auto& row : rows) tree_width = std::max(tree_width, display_width(tree_label(row)));
  tree_width = std::min(tree_width, kMaxTreeColumn);
  const std::int64_t t0 = trace.start_us();
  const std::int64_t total = trace.end_us() - t0;

  std::string out = header_line(trace, rows);
  out += fmt::format("{:>9}  {:>9}  {}  {}  {:<8}  {}\n", "start ms", "dur ms", pad("timeline", width + 2),
                     pad("service: span", tree_width), "kind", "status  attributes");
  for (const auto& row : rows) out += span_line(row, t0, total, width, tree_width);
  return out;
}

bool is_trace_id(std::string_view text) {
  return text.size() == 32 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<std::int64_t> parse_lookback(std::string_view text) {
  constexpr std::int64_t kMinuteUs = 60'000'000;
  constexpr std::int64_t kWeekUs = kMinuteUs * 60 * 24 * 7;
  if (text.size() < 2) return std::nullopt;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 'm':
      unit = kMinuteUs;
      break;
    case 'h':
      unit = 60 * kMinuteUs;
      break;
    case 'd':
      unit = kMinuteUs * 60 * 24;
      break;
    case 'w':
      unit = kWeekUs;
      break;
    default:
      return std::nullopt;
  }
  const std::string_view digits = text.substr(0, text.size() - 1);
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n <= 0 || n > 52 * kWeekUs / unit) {
    return std::nullopt;
  }
  return n * unit;
}

std::string percent_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool unreserved = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' ||
                            u == '_' || u == '.' || u == '~';
    out += unreserved ? std::string(1, c) : fmt::format("%{:02X}", u);
  }
  return out;
}

std::string transaction_search_target(std::string_view service, std::string_view transaction_id,
                                      std::string_view lookback, std::int64_t now_us, int limit) {
  const auto window = parse_lookback(lookback);
  if (!window) throw std::invalid_argument("invalid lookback: " + std::string(lookback));
  const std::string tags = json::serialize(json::object{{"pix.transaction_id", transaction_id}});
  return fmt::format("/api/traces?service={}&tags={}&start={}&end={}&lookback={}&limit={}", percent_encode(service),
                     percent_encode(tags), now_us - *window, now_us, percent_encode(lookback), limit);
}

}  // namespace pix::telemetry
