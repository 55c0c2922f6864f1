#pragma once
/// @file Every answer the gateway's Server sends: the JSON bodies and the problem+json refusals
/// (RFC 9457), each with its status and headers. The Server decides which; these build it.

#include <boost/beast/core/error.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include "pix/broker/publisher.hpp"
#include "pix/gateway/authenticator.hpp"
#include "pix/gateway/config.hpp"
#include "pix/gateway/idempotency.hpp"
#include "pix/gateway/server.hpp"
#include "pix/http/problem.hpp"

namespace pix::gateway {

/// The `broker` label and body field: "kafka" or "rabbitmq".
std::string_view broker_name(BrokerKind broker) noexcept;

/// A JSON (or `content_type`) answer in the request's HTTP version.
Response json_response(const Request& req, boost::beast::http::status status, std::string body,
                       std::string_view content_type = "application/json");
/// `p` as application/problem+json, with Retry-After when `p.retry_after_s` > 0.
Response problem_response(const Request& req, const http::Problem& p, std::string_view instance);

// Reading and routing.

/// 413, 431 or 400 for a request Beast could not parse (HTTP/1.1: there is no request to follow).
Response unreadable_request(const boost::beast::error_code& ec, std::size_t max_body);
/// 431: more than `max` header fields.
Response too_many_header_fields(std::size_t max);
/// 405 whose detail says to `use` a method; `allow` is the Allow header.
Response method_not_allowed(const Request& req, std::string_view instance, std::string_view use,
                            std::string_view allow);
/// 404 listing what this gateway answers.
Response not_found(const Request& req, std::string_view instance, std::string_view publish_route);
/// 503 `draining`: read after shutdown began, nothing published, a retry is safe.
Response draining(const Request& req, int retry_after_s);
/// 503 to a connection accepted beyond --max-connections.
Response too_many_connections(const Request& req, std::size_t max_connections, int retry_after_s);

// Probes.

Response alive(const Request& req);
/// /readyz: the broker probe's verdict.
Response readiness(const Request& req, bool ready, BrokerKind broker, std::string_view detail);
/// /readyz once shutdown began.
Response readiness_draining(const Request& req);
Response metrics_text(const Request& req, std::string exposition);

// Admission: all of these answer the publishing route (`instance`).

/// 401 with its RFC 6750 WWW-Authenticate challenge.
Response unauthorized(const Request& req, std::string_view instance, const Authentication& refusal);
/// 429: more than `rate` requests/s from `who`.
Response rate_limited(const Request& req, std::string_view instance, double rate, std::string_view who,
                      int retry_after_s);
/// 403: `principal` lacks `scope`.
Response forbidden(const Request& req, std::string_view instance, std::string_view principal, std::string_view scope);

// Idempotency-Key.

/// 400: the header is not 1 to 255 visible ASCII characters.
Response invalid_idempotency_key(const Request& req, std::string_view instance);
/// 409: the same key is being published right now.
Response idempotency_in_progress(const Request& req, std::string_view instance);
/// 422: the key was used for another request.
Response idempotency_key_reused(const Request& req, std::string_view instance);
/// The stored answer again, marked Idempotent-Replayed.
Response replayed(const Request& req, const StoredResponse& stored);

// The broker's verdict.

/// 200 with what the API documents: status, broker, topic, eventId, transactionId, then
/// partition/offset (Kafka, and kafkaTopic with a prefix) or exchange/routingKey (AMQP).
Response published(const Request& req, const GatewayConfig& config, std::string_view topic, std::string_view event_id,
                   std::string_view transaction_id, const broker::PublishResult& result);
/// What any verdict but kAcked answers: 504 (may exist), 502 (refused) or 503 (retry later).
http::Problem publish_failure(const broker::PublishResult& result, std::string_view event_id, int retry_after_s);

}  // namespace pix::gateway
