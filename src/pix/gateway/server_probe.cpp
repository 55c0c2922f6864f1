#include "pix/gateway/server_probe.hpp"

#include "pix/gateway/responses.hpp"
#include "pix/telemetry/tracer.hpp"

namespace pix::gateway {
namespace {

const std::string kRequestsTotal = "pix_http_requests_total";
const std::string kRequestsHelp = "HTTP requests by route, method and status code";
const std::string kRequestDuration = "pix_http_request_duration_seconds";
const std::string kRequestDurationHelp = "HTTP request latency, from the request read to the response ready";
const std::string kPublishTotal = "pix_publish_total";
const std::string kPublishHelp = "Publish attempts by broker, topic and result";
const std::string kAuthRejections = "pix_auth_rejections_total";
const std::string kAuthRejectionsHelp = "Publish requests refused 401 or 403, by reason";
const std::string kTlsReloads = "pix_tls_reloads_total";
const std::string kTlsReloadsHelp = "Certificate reloads by result";
const std::string kTlsExpiry = "pix_tls_certificate_expiry_seconds";
const std::string kTlsExpiryHelp = "Seconds until the serving certificate expires";

}  // namespace

ServerProbe::ServerProbe(telemetry::Registry& metrics, const GatewayConfig& config, const broker::Publisher& publisher,
                         const service::WorkGate& requests, const IdempotencyCache& idempotency,
                         const TlsContextSource* tls)
    : publish_route_(config.route()),
      ack_latency_(&metrics.histogram("pix_broker_ack_duration_seconds",
                                      "Time from handing an event to the broker client to its verdict",
                                      {{"broker", std::string(broker_name(config.broker))}})),
      replays_(&metrics.counter("pix_idempotent_replays_total",
                                "Requests answered from the Idempotency-Key window without publishing")),
      requests_(metrics, kRequestsTotal, kRequestsHelp),
      auth_rejections_(metrics, kAuthRejections, kAuthRejectionsHelp),
      tls_reloads_(metrics, kTlsReloads, kTlsReloadsHelp),
      rate_limited_(&metrics.counter("pix_rate_limited_total", "Requests refused 429 by the per-principal rate limit")),
      connections_refused_(&metrics.counter("pix_http_connections_refused_total",
                                            "Connections answered 503 and closed beyond --max-connections")),
      tls_handshake_failures_(&metrics.counter("pix_tls_handshake_failures_total",
                                               "TLS handshakes that failed (plaintext to HTTPS included)")) {
  const std::string broker(broker_name(config.broker));
  telemetry::register_build_info(metrics, config.service_name());
  telemetry::describe_tracing_metrics(metrics);  // exported with tracing off too: dashboards see zeros
  static_assert(static_cast<std::size_t>(broker::PublishStatus::kNacked) + 1 == kStatuses);
  metrics.describe(kRequestsTotal, kRequestsHelp, "counter");
  for (std::size_t r = 0; r < kRoutes; ++r) {
    request_duration_[r] =
        &metrics.histogram(kRequestDuration, kRequestDurationHelp, {{"route", route_label(static_cast<Route>(r))}});
  }
  // Every topic and result from the start: dashboards see zeros rather than missing series.
  for (std::size_t t = 0; t < domain::kTopicNames.size(); ++t) {
    for (std::size_t st = 0; st < kStatuses; ++st) {
      publishes_[t][st] =
          &metrics.counter(kPublishTotal, kPublishHelp,
                           {{"broker", broker},
                            {"topic", std::string(domain::kTopicNames[t])},
                            {"result", std::string(broker::to_string(static_cast<broker::PublishStatus>(st)))}});
    }
  }
  metrics.gauge("pix_publish_in_flight", "Events handed to the broker and not yet acknowledged", {{"broker", broker}},
                [&publisher] { return static_cast<double>(publisher.in_flight()); });
  metrics.gauge("pix_http_requests_in_progress", "HTTP requests being handled", {},
                [&requests] { return static_cast<double>(requests.in_flight()); });
  metrics.gauge("pix_http_open_connections", "Open HTTP connections", {},
                [this] { return static_cast<double>(open_connections()); });
  metrics.gauge("pix_idempotency_keys", "Idempotency keys remembered", {},
                [&idempotency] { return static_cast<double>(idempotency.size()); });
  metrics.gauge("pix_idempotency_index_rows", "Rows of the Idempotency-Key expiry index, stale ones included", {},
                [&idempotency] { return static_cast<double>(idempotency.rows()); });
  metrics.describe(kAuthRejections, kAuthRejectionsHelp, "counter");
  metrics.describe(kTlsReloads, kTlsReloadsHelp, "counter");
  metrics.describe(kTlsExpiry, kTlsExpiryHelp, "gauge");
  if (tls != nullptr) metrics.gauge(kTlsExpiry, kTlsExpiryHelp, {}, [tls] { return tls->seconds_until_expiry(); });
}

std::string ServerProbe::route_label(Route route) const {
  switch (route) {
    case Route::kPublish:
      return publish_route_;
    case Route::kHealthz:
      return "/healthz";
    case Route::kReadyz:
      return "/readyz";
    case Route::kMetrics:
      return "/metrics";
    case Route::kOther:
      return "other";
    case Route::kUnparsed:
      return "unparsed";
  }
  return "other";
}

void ServerProbe::request(Route route, boost::beast::http::verb method, unsigned code, double seconds) {
  const auto key = (static_cast<std::uint64_t>(route) << 40) | (static_cast<std::uint64_t>(method) << 16) |
                   static_cast<std::uint64_t>(code);
  requests_
      .get(key,
           [&] {
             const bool named = method != boost::beast::http::verb::unknown;
             return telemetry::Labels{
                 {"route", route_label(route)},
                 {"method", named ? std::string(boost::beast::http::to_string(method)) : std::string("other")},
                 {"code", std::to_string(code)}};
           })
      .inc();
  request_duration_[static_cast<std::size_t>(route)]->observe(seconds);
}

void ServerProbe::auth_rejected(const std::string& reason) {
  auth_rejections_.get(reason, [&] { return telemetry::Labels{{"reason", reason}}; }).inc();
}

void ServerProbe::tls_reloaded(bool ok) {
  tls_reloads_.get(ok, [&] { return telemetry::Labels{{"result", ok ? "ok" : "failed"}}; }).inc();
}

}  // namespace pix::gateway
