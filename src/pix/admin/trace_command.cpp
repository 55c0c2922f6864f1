#include <chrono>
#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include "pix/admin/commands.hpp"
#include "pix/http/client.hpp"
#include "pix/telemetry/trace_view.hpp"

namespace pix::admin {
namespace {

/// @brief Jaeger's HTTP query API: where it is, as parsed and as the user wrote it.
struct JaegerApi {
  http::Url base;    ///< target: the query API's base path, without a trailing '/'
  std::string text;  ///< the base URL for messages, without a trailing '/'

  std::string url_of(const std::string& target) const { return text + target; }
};

/// A trace answer can be a whole saga's spans: far more than a JWKS document.
constexpr std::size_t kMaxTraceAnswerBytes = 32u << 20;
constexpr std::string_view kNotFoundHint =
    "  (spans reach Jaeger a few seconds after the request, and only from services run with tracing enabled:\n"
    "  OTEL_EXPORTER_OTLP_ENDPOINT set)\n";

JaegerApi jaeger_api(const std::string& text) {
  std::string error;
  JaegerApi api{*http::parse_url(text, error), text};  // kJaegerUrl has accepted it
  while (!api.text.empty() && api.text.back() == '/') api.text.pop_back();
  while (!api.base.target.empty() && api.base.target.back() == '/') api.base.target.pop_back();
  return api;
}

http::ClientResponse jaeger_get(const JaegerApi& api, const std::string& target) {
  http::ClientRequest request;
  request.url = api.base;
  request.url.target = api.base.target + target;
  request.headers = {{"Accept", "application/json"}};
  request.max_response_bytes = kMaxTraceAnswerBytes;
  return http::send_request(request);
}

/// Exit 2: Jaeger gave no answer, or one that is not a success.
int backend_error(const JaegerApi& api, const std::string& target, const http::ClientResponse& r) {
  std::string why = r.error;
  if (r.status != 0) {
    const auto reported = telemetry::parse_jaeger_traces(r.body).error;
    why = "HTTP " + std::to_string(r.status) + ": " + (reported.empty() ? r.body.substr(0, 200) : reported);
  }
  std::fprintf(stderr, "pix-admin: Jaeger at %s: %s\n", api.url_of(target).c_str(), why.c_str());
  return 2;
}

void print_waterfalls(const std::vector<telemetry::Trace>& traces, const TraceConfig& o) {
  for (std::size_t i = 0; i < traces.size(); ++i) {
    std::fputs(((i ? "\n" : "") + telemetry::render_waterfall(traces[i], {o.width})).c_str(), stdout);
  }
}

int show_trace(const JaegerApi& api, const TraceConfig& o) {
  const std::string target = "/api/traces/" + o.id;
  const auto r = jaeger_get(api, target);
  if (r.status != 200 && r.status != 404) return backend_error(api, target, r);
  const auto answer = telemetry::parse_jaeger_traces(r.body);
  if (answer.traces.empty()) {
    if (r.status == 200 && !answer.error.empty()) return backend_error(api, target, r);
    std::fprintf(stderr, "pix-admin: Jaeger at %s has no trace %s\n%s", api.text.c_str(), o.id.c_str(),
                 kNotFoundHint.data());
    return 1;
  }
  if (o.json) {
    std::printf("%s\n", r.body.c_str());
  } else {
    print_waterfalls(answer.traces, o);
  }
  return 0;
}

/// The services Jaeger has spans of, but its own; nullopt (reported) when it cannot say.
std::optional<std::vector<std::string>> traced_services(const JaegerApi& api) {
  const std::string target = "/api/services";
  const auto r = jaeger_get(api, target);
  if (r.status != 200) {
    backend_error(api, target, r);
    return std::nullopt;
  }
  std::string error;
  auto services = telemetry::parse_jaeger_services(r.body, error);
  if (!services) {
    std::fprintf(stderr, "pix-admin: Jaeger at %s: %s\n", api.url_of(target).c_str(), error.c_str());
    return std::nullopt;
  }
  std::erase_if(*services, [](const std::string& s) { return s == "jaeger" || s.starts_with("jaeger-"); });
  return services;
}

/// @brief What searching every service for a transaction found, and how many searches failed.
struct TransactionSearch {
  std::vector<telemetry::Trace> traces;  ///< distinct, most recent first
  int failures = 0;
};

TransactionSearch search_transaction(const JaegerApi& api, const std::vector<std::string>& services,
                                     const TraceConfig& o) {
  const auto now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  TransactionSearch out;
  for (const auto& service : services) {
    const auto target = telemetry::transaction_search_target(service, o.id, o.lookback, now_us);
    const auto r = jaeger_get(api, target);
    auto answer = r.status == 200 ? telemetry::parse_jaeger_traces(r.body) : telemetry::JaegerTraces{};
    if (r.status != 200 || (answer.traces.empty() && !answer.error.empty())) {
      backend_error(api, target, r);
      ++out.failures;
      continue;
    }
    std::move(answer.traces.begin(), answer.traces.end(), std::back_inserter(out.traces));
  }
  out.traces = telemetry::distinct_most_recent_first(std::move(out.traces));
  return out;
}

int show_transaction(const JaegerApi& api, const TraceConfig& o) {
  const auto services = traced_services(api);
  if (!services) return 2;
  const auto found = search_transaction(api, *services, o);
  if (found.traces.empty()) {
    if (found.failures > 0) return 2;
    std::string names;
    for (const auto& s : *services) names += (names.empty() ? "" : ", ") + s;
    std::fprintf(stderr,
                 "pix-admin: no trace with pix.transaction_id=%s in the last %s among the %zu services %s knows%s\n%s",
                 o.id.c_str(), o.lookback.c_str(), services->size(), api.text.c_str(),
                 names.empty() ? "" : (" (" + names + ")").c_str(), kNotFoundHint.data());
    return 1;
  }
  const std::size_t n = found.traces.size();
  std::fprintf(o.json ? stderr : stdout,
               "%zu trace%s with pix.transaction_id=%s in the last %s (most recent first)\n%s", n, n == 1 ? "" : "s",
               o.id.c_str(), o.lookback.c_str(), o.json ? "" : "\n");
  if (o.json) {
    std::printf("%s\n", telemetry::jaeger_answer_json(found.traces).c_str());
  } else {
    print_waterfalls(found.traces, o);
  }
  if (found.failures > 0) {
    std::fprintf(stderr, "pix-admin: %d of %zu services could not be searched: there may be more traces\n",
                 found.failures, services->size());
  }
  return 0;
}

}  // namespace

int run_trace(const TraceConfig& o) {
  try {
    const JaegerApi api = jaeger_api(o.jaeger);
    return telemetry::is_trace_id(o.id) ? show_trace(api, o) : show_transaction(api, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pix-admin: trace: %s\n", e.what());
    return 2;
  }
}

}  // namespace pix::admin
