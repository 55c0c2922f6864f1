#include "pix/telemetry/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "pix/telemetry/tracer.hpp"

namespace pix::telemetry {
namespace {

// `%*` in the pattern: the message, escaped so each line stays valid JSON whatever it says.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string escaped = json_escape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<EscapedMessage>(); }
};

// `%&`: the active span's ids, as JSON members (`,"trace_id":"…","span_id":"…"`) or as text
// (` trace_id=… span_id=…`), or nothing outside a span.
class TraceIds final : public spdlog::custom_flag_formatter {
 public:
  explicit TraceIds(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const Span* span = active_span();
    if (!span || !span->valid()) return;
    const auto& c = span->context();
    const std::string ids = json_ ? R"(,"trace_id":")" + c.trace_id + R"(","span_id":")" + c.span_id + "\""
                                  : " trace_id=" + c.trace_id + " span_id=" + c.span_id;
    dest.append(ids.data(), ids.data() + ids.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<TraceIds>(json_); }

 private:
  bool json_;
};

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t run = 0;  // start of the characters that need no escape, appended in one go
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;  // UTF-8 passes through as it is
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(s.data() + run, s.size() - run);
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  append_json_escaped(out, s);
  return out;
}

void setup_logging(const std::string& service, const std::string& level, const std::string& format) {
  auto logger = std::make_shared<spdlog::logger>(service, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<EscapedMessage>('*');
    formatter->add_flag<TraceIds>('&', true).set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","service":"%n","pid":%P%&,"msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<TraceIds>('&', false).set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %n: %v%&");
    logger->set_formatter(std::move(formatter));
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace pix::telemetry
