#include "pix/gateway/responses.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace pix::gateway {

namespace bhttp = boost::beast::http;

namespace {

// RFC 6750 §3: what the client should do, in the header as well as the body.
std::string bearer_challenge(std::string_view error, std::string_view detail, std::string_view scope = {}) {
  std::string h = "Bearer realm=\"pix-api\"";
  if (!error.empty()) h += ", error=\"" + std::string(error) + "\"";
  if (!detail.empty()) h += ", error_description=\"" + std::string(detail) + "\"";
  if (!scope.empty()) h += ", scope=\"" + std::string(scope) + "\"";
  return h;
}

// The problems about the Idempotency-Key header share their field.
http::Problem idempotency_problem(int status, std::string type, std::string title, std::string detail) {
  http::Problem p;
  p.status = status;
  p.type = std::move(type);
  p.title = std::move(title);
  p.detail = std::move(detail);
  p.field = "Idempotency-Key";
  return p;
}

// Answers to a request that was not (or could not be) parsed: HTTP/1.1, as Beast's default.
Response unparsed_problem(const http::Problem& p) {
  Request bare;
  bare.version(11);
  return problem_response(bare, p, "");
}

}  // namespace

std::string_view broker_name(BrokerKind broker) noexcept {
  return broker == BrokerKind::kKafka ? "kafka" : "rabbitmq";
}

Response json_response(const Request& req, bhttp::status status, std::string body, std::string_view content_type) {
  Response res{status, req.version()};
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response problem_response(const Request& req, const http::Problem& p, std::string_view instance) {
  Response res =
      json_response(req, static_cast<bhttp::status>(p.status), http::to_json(p, instance), "application/problem+json");
  if (p.retry_after_s > 0) res.set(bhttp::field::retry_after, std::to_string(p.retry_after_s));
  return res;
}

Response unreadable_request(const boost::beast::error_code& ec, std::size_t max_body) {
  http::Problem p;
  if (ec == bhttp::error::body_limit) {
    p.status = 413;
    p.type = "payload-too-large";
    p.title = "The body is too large";
    p.detail = "the body exceeds " + std::to_string(max_body) + " bytes";
  } else if (ec == bhttp::error::header_limit) {
    p.status = 431;
    p.type = "headers-too-large";
    p.title = "The request headers are too large";
  } else {
    p.status = 400;
    p.type = "bad-request";
    p.title = "The HTTP request could not be parsed";
    p.detail = ec.message();
  }
  return unparsed_problem(p);
}

Response too_many_header_fields(std::size_t max) {
  http::Problem p;
  p.status = 431;
  p.type = "headers-too-large";
  p.title = "The request has too many header fields";
  p.detail = "at most " + std::to_string(max) + " header fields are accepted";
  return unparsed_problem(p);
}

Response method_not_allowed(const Request& req, std::string_view instance, std::string_view use,
                            std::string_view allow) {
  http::Problem p;
  p.status = 405;
  p.type = "method-not-allowed";
  p.title = "Method not allowed";
  p.detail = std::string(req.method_string()) + " is not allowed here; use " + std::string(use);
  Response res = problem_response(req, p, instance);
  res.set(bhttp::field::allow, allow);
  return res;
}

Response not_found(const Request& req, std::string_view instance, std::string_view publish_route) {
  http::Problem p;
  p.status = 404;
  p.type = "not-found";
  p.title = "No such resource";
  p.detail = "this service answers POST " + std::string(publish_route) + ", GET /healthz, /readyz, /metrics";
  return problem_response(req, p, instance);
}

Response draining(const Request& req, int retry_after_s) {
  http::Problem p;
  p.status = 503;
  p.type = "draining";
  p.title = "The gateway is shutting down";
  p.detail = "this instance takes no new requests; retry (another instance will answer)";
  p.retry_after_s = retry_after_s;
  return problem_response(req, p, "");
}

Response too_many_connections(const Request& req, std::size_t max_connections, int retry_after_s) {
  http::Problem p;
  p.status = 503;
  p.type = "too-many-connections";
  p.title = "The gateway has too many open connections";
  p.detail = "at most " + std::to_string(max_connections) + " connections are served; retry later";
  p.retry_after_s = retry_after_s;
  return problem_response(req, p, "");
}

Response alive(const Request& req) {
  return json_response(req, bhttp::status::ok, R"({"status":"alive"})");
}

Response readiness(const Request& req, bool ready, BrokerKind broker, std::string_view detail) {
  boost::json::object o;
  o["status"] = ready ? "ready" : "unavailable";
  o["broker"] = broker_name(broker);
  o["detail"] = detail;
  return json_response(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable, boost::json::serialize(o));
}

Response readiness_draining(const Request& req) {
  return json_response(req, bhttp::status::service_unavailable, R"({"status":"draining"})");
}

Response metrics_text(const Request& req, std::string exposition) {
  return json_response(req, bhttp::status::ok, std::move(exposition), "text/plain; version=0.0.4; charset=utf-8");
}

Response unauthorized(const Request& req, std::string_view instance, const Authentication& refusal) {
  http::Problem p;
  p.status = 401;
  p.type = "unauthorized";
  p.title = "Authentication is required";
  p.detail = refusal.detail;
  if (refusal.reason == "query_string") {
    p.field = "access_token";
  } else if (refusal.reason != "missing") {
    p.field = "Authorization";
  }
  Response res = problem_response(req, p, instance);
  res.set(bhttp::field::www_authenticate, bearer_challenge(refusal.error, refusal.error.empty() ? "" : refusal.detail));
  return res;
}

Response rate_limited(const Request& req, std::string_view instance, double rate, std::string_view who,
                      int retry_after_s) {
  http::Problem p;
  p.status = 429;
  p.type = "rate-limited";
  p.title = "Too many requests";
  p.detail =
      "more than " + std::to_string(static_cast<long>(rate)) + " requests/s from " + std::string(who) + "; slow down";
  p.retry_after_s = retry_after_s;
  return problem_response(req, p, instance);
}

Response forbidden(const Request& req, std::string_view instance, std::string_view principal, std::string_view scope) {
  http::Problem p;
  p.status = 403;
  p.type = "forbidden";
  p.title = "Not allowed to publish to this topic";
  p.detail = std::string(principal) + " lacks the scope " + std::string(scope);
  p.field = "topic";
  Response res = problem_response(req, p, instance);
  res.set(bhttp::field::www_authenticate, bearer_challenge("insufficient_scope", p.detail, scope));
  return res;
}

Response invalid_idempotency_key(const Request& req, std::string_view instance) {
  http::Problem p = idempotency_problem(400, "invalid-header", "A header has an invalid value",
                                        "Idempotency-Key must be 1 to 255 visible ASCII characters");
  return problem_response(req, p, instance);
}

Response idempotency_in_progress(const Request& req, std::string_view instance) {
  http::Problem p =
      idempotency_problem(409, "request-in-progress", "A request with this Idempotency-Key is still being processed",
                          "retry after it completes");
  p.retry_after_s = 1;
  return problem_response(req, p, instance);
}

Response idempotency_key_reused(const Request& req, std::string_view instance) {
  http::Problem p =
      idempotency_problem(422, "idempotency-key-reused", "The Idempotency-Key was already used for a different request",
                          "use a new key for a new event");
  return problem_response(req, p, instance);
}

Response replayed(const Request& req, const StoredResponse& stored) {
  Response res = json_response(req, static_cast<bhttp::status>(stored.status), stored.body);
  res.set("Idempotent-Replayed", "true");
  return res;
}

Response published(const Request& req, const GatewayConfig& config, std::string_view topic, std::string_view event_id,
                   std::string_view transaction_id, const broker::PublishResult& result) {
  boost::json::object o;
  o["status"] = "published";
  o["broker"] = broker_name(config.broker);
  o["topic"] = topic;
  o["eventId"] = event_id;
  o["transactionId"] = transaction_id;
  if (config.broker == BrokerKind::kKafka) {
    if (!config.topic_prefix.empty()) o["kafkaTopic"] = config.topic_prefix + std::string(topic);
    o["partition"] = result.partition;
    o["offset"] = result.offset;
  } else {
    o["exchange"] = config.exchange;
    o["routingKey"] = topic;
  }
  return json_response(req, bhttp::status::ok, boost::json::serialize(o));
}

http::Problem publish_failure(const broker::PublishResult& result, std::string_view event_id, int retry_after_s) {
  http::Problem p;
  p.detail = result.detail;
  switch (result.status) {
    case broker::PublishStatus::kTimedOut:
    case broker::PublishStatus::kNacked: {
      const bool nacked = result.status == broker::PublishStatus::kNacked;
      p.status = 504;
      p.type = nacked ? "broker-nacked" : "broker-ack-timeout";
      p.title = nacked ? "The broker refused the event in one of its queues"
                       : "The broker did not acknowledge the event in time";
      p.detail += "; the event may exist: retrying with the same Idempotency-Key is safe";
      p.event_id = event_id;
      break;
    }
    case broker::PublishStatus::kRejected:
      p.status = 502;
      p.type = "broker-rejected";
      p.title = "The broker refused the event";
      p.event_id = event_id;
      break;
    default:
      p.status = 503;
      p.type = "broker-unavailable";
      p.title = "The broker cannot take the event now";
      p.retry_after_s = retry_after_s;
      break;
  }
  return p;
}

}  // namespace pix::gateway
