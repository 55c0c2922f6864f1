#include "pix/telemetry/trace_context.hpp"

#include "pix/util/random_id.hpp"

namespace pix::telemetry {
namespace {

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

std::string nonzero_hex(std::size_t bytes) {
  for (;;) {
    std::string h = util::random_hex(bytes);
    if (!all_zero(h)) return h;
  }
}

}  // namespace

std::string TraceContext::to_traceparent() const {
  return "00-" + trace_id + "-" + span_id + (sampled ? "-01" : "-00");
}

TraceContext TraceContext::child_of(const std::optional<TraceContext>& parent) {
  TraceContext c;
  c.trace_id = parent ? parent->trace_id : nonzero_hex(16);
  c.span_id = nonzero_hex(8);
  c.sampled = parent ? parent->sampled : true;
  return c;
}

std::optional<TraceContext> parse_traceparent(std::string_view h) {
  // version(2) - trace(32) - span(16) - flags(2); future versions may append fields.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  const auto version = h.substr(0, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  const auto trace = h.substr(3, 32), span = h.substr(36, 16), flags = h.substr(53, 2);
  if (!is_lower_hex(trace) || !is_lower_hex(span) || !is_lower_hex(flags)) return std::nullopt;
  if (all_zero(trace) || all_zero(span)) return std::nullopt;
  TraceContext c;
  c.trace_id = std::string(trace);
  c.span_id = std::string(span);
  const int f = (flags[1] >= 'a' ? flags[1] - 'a' + 10 : flags[1] - '0');
  c.sampled = (f & 1) != 0;
  return c;
}

}  // namespace pix::telemetry
