#pragma once
/// @file Owners of librdkafka's handles (after userver's kafka/impl/holders.hpp): each is a
/// unique_ptr whose deleter is the handle's destroy function, so no path (an exception, an early
/// return) leaks one or destroys one twice. Internal to pix_kafka: no public header names
/// librdkafka's types.

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pix::kafka::detail {

/// Calls `Destroy` on a non-null handle.
template <class T, void (*Destroy)(T*)>
struct Destroyer {
  void operator()(T* handle) const noexcept {
    if (handle != nullptr) Destroy(handle);
  }
};

template <class T, void (*Destroy)(T*)>
using Handle = std::unique_ptr<T, Destroyer<T, Destroy>>;

/// A client (producer or consumer). A consumer must be closed (rd_kafka_consumer_close) first
/// where it leaves a group: destruction alone does not commit.
using ClientHandle = Handle<rd_kafka_t, &rd_kafka_destroy>;
/// Until rd_kafka_new() succeeds, when librdkafka takes it: see new_client().
using ConfHandle = Handle<rd_kafka_conf_t, &rd_kafka_conf_destroy>;
using PartitionListHandle = Handle<rd_kafka_topic_partition_list_t, &rd_kafka_topic_partition_list_destroy>;
/// Until handed to a successful rd_kafka_producev() (RD_KAFKA_V_HEADERS), which takes it.
using HeadersHandle = Handle<rd_kafka_headers_t, &rd_kafka_headers_destroy>;
using QueueHandle = Handle<rd_kafka_queue_t, &rd_kafka_queue_destroy>;
using EventHandle = Handle<rd_kafka_event_t, &rd_kafka_event_destroy>;
using MessageHandle = Handle<rd_kafka_message_t, &rd_kafka_message_destroy>;
using TopicHandle = Handle<rd_kafka_topic_t, &rd_kafka_topic_destroy>;
using MetadataHandle = Handle<const rd_kafka_metadata_t, &rd_kafka_metadata_destroy>;
using AdminOptionsHandle = Handle<rd_kafka_AdminOptions_t, &rd_kafka_AdminOptions_destroy>;
using NewTopicHandle = Handle<rd_kafka_NewTopic_t, &rd_kafka_NewTopic_destroy>;
using DeleteTopicHandle = Handle<rd_kafka_DeleteTopic_t, &rd_kafka_DeleteTopic_destroy>;
using AclBindingHandle = Handle<rd_kafka_AclBinding_t, &rd_kafka_AclBinding_destroy>;

/// The raw pointers of `handles`, for the admin calls that take an array (they copy what they
/// need, so `handles` may be destroyed right after the call).
template <class H>
std::vector<typename H::pointer> raw(const std::vector<H>& handles) {
  std::vector<typename H::pointer> out;
  out.reserve(handles.size());
  for (const auto& h : handles) out.push_back(h.get());
  return out;
}

/// A fresh configuration.
ConfHandle new_conf();
/// Sets one property; throws std::invalid_argument with librdkafka's reason.
void set_option(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);
/// set_option() for each of `options`, in order.
void set_options(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& options);

/// rd_kafka_new(): on success the client owns the configuration and `conf` is released; on
/// failure `conf` still owns it (and destroys it) and std::runtime_error says "cannot create
/// Kafka <what>: <reason>".
ClientHandle new_client(rd_kafka_type_t type, ConfHandle conf, std::string_view what);

/// A client for admin requests (a producer that sends nothing): client.id pix-admin, `extra`
/// (security properties) applied last.
ClientHandle new_admin_client(const std::string& bootstrap, const std::map<std::string, std::string>& extra);

/// Waits for the result event of the admin request `request` (e.g. "CreateTopics") on `queue`:
/// throws std::runtime_error when none comes within `timeout_ms` (naming `bootstrap`), or when
/// it is not of `type` or carries a request-level error.
EventHandle wait_admin_result(rd_kafka_queue_t* queue, int timeout_ms, rd_kafka_event_type_t type,
                              std::string_view request, std::string_view bootstrap);

/// Runs one admin request of kind `op`: `send(options, queue)` sets its timeouts on `options` and
/// issues it with the result going to `queue`; then its result event, as wait_admin_result()
/// (allowing one more second than `timeout_ms`, the broker-side bound).
template <class Send>
EventHandle admin_request(rd_kafka_t* rk, rd_kafka_admin_op_t op, int timeout_ms, rd_kafka_event_type_t type,
                          std::string_view request, std::string_view bootstrap, Send&& send) {
  const QueueHandle queue(rd_kafka_queue_new(rk));
  {
    const AdminOptionsHandle options(rd_kafka_AdminOptions_new(rk, op));
    send(options.get(), queue.get());
  }
  return wait_admin_result(queue.get(), timeout_ms + 1000, type, request, bootstrap);
}

/// One cluster metadata request (all topics when `topic` is null); the error is returned and
/// `out` left empty on failure.
rd_kafka_resp_err_t fetch_metadata(rd_kafka_t* rk, rd_kafka_topic_t* topic, int timeout_ms, MetadataHandle& out);

/// librdkafka's log callback, into spdlog (errors at error level, warnings at warn, the rest
/// debug).
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message);

}  // namespace pix::kafka::detail
