#include "pix/amqp/consumer.hpp"

#include <amqp.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <thread>

#include "pix/amqp/connection.hpp"

namespace pix::amqp {
namespace {

constexpr amqp_channel_t kChannel = 1;

using detail::bytes_of;
using detail::string_of;

std::string rpc_error(amqp_connection_state_t conn, std::string_view what) {
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return {};
  return std::string(what) + ": " + detail::describe_rpc_reply(reply);
}

std::string field_text(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      return string_of(v.value.bytes);
    case AMQP_FIELD_KIND_I8:
      return std::to_string(v.value.i8);
    case AMQP_FIELD_KIND_U8:
      return std::to_string(v.value.u8);
    case AMQP_FIELD_KIND_I16:
      return std::to_string(v.value.i16);
    case AMQP_FIELD_KIND_U16:
      return std::to_string(v.value.u16);
    case AMQP_FIELD_KIND_I32:
      return std::to_string(v.value.i32);
    case AMQP_FIELD_KIND_U32:
      return std::to_string(v.value.u32);
    case AMQP_FIELD_KIND_I64:
      return std::to_string(v.value.i64);
    case AMQP_FIELD_KIND_U64:
      return std::to_string(v.value.u64);
    case AMQP_FIELD_KIND_BOOLEAN:
      return v.value.boolean ? "true" : "false";
    default:
      return {};
  }
}

const std::string kEmpty;

}  // namespace

const std::string& Delivery::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? kEmpty : it->second;
}

AmqpConsumer::AmqpConsumer(ConsumerOptions options) : options_(std::move(options)) {}

AmqpConsumer::~AmqpConsumer() {
  detail::close_connection(conn_);
}

bool AmqpConsumer::connect() {
  if (std::chrono::steady_clock::now() < next_attempt_) return false;
  auto opened = detail::open_connection(options_.url, options_.connect_timeout, 30, options_.connection_name);
  std::string error = opened.error;
  amqp_connection_state_t conn = opened.conn;
  if (conn) {
    amqp_channel_open(conn, kChannel);
    error = rpc_error(conn, "channel.open");
  }
  if (conn && error.empty()) {
    amqp_basic_qos(conn, kChannel, 0, options_.prefetch, 0);
    error = rpc_error(conn, "basic.qos");
  }
  std::string queue = options_.queue;
  if (conn && error.empty() && queue.empty()) {
    const auto* ok = amqp_queue_declare(conn, kChannel, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    error = rpc_error(conn, "queue.declare");
    if (error.empty()) queue = string_of(ok->queue);
    for (const auto& key : options_.bindings) {
      if (!error.empty()) break;
      amqp_queue_bind(conn, kChannel, bytes_of(queue), bytes_of(options_.exchange), bytes_of(key), amqp_empty_table);
      error = rpc_error(conn, "queue.bind " + key);
    }
  }
  if (conn && error.empty()) {
    amqp_basic_consume(conn, kChannel, bytes_of(queue), amqp_empty_bytes, 0, /*no_ack=*/0, 0, amqp_empty_table);
    error = rpc_error(conn, "basic.consume " + queue);
  }
  if (!error.empty()) {
    detail::close_connection(conn);
    spdlog::warn("amqp consumer: cannot consume from {} ({}); retrying in {} ms", options_.url.redacted(), error,
                 backoff_.count());
    next_attempt_ = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(2000));
    return false;
  }
  conn_ = conn;
  queue_ = queue;
  ++generation_;
  backoff_ = std::chrono::milliseconds(100);
  spdlog::info("amqp consumer: consuming {} on {}", queue_, options_.url.redacted());
  return true;
}

void AmqpConsumer::disconnect(const std::string& why) {
  spdlog::warn("amqp consumer: connection lost ({}); unacked deliveries will come again", why);
  detail::close_connection(conn_);
  conn_ = nullptr;
}

std::optional<Delivery> AmqpConsumer::next(std::chrono::milliseconds timeout) {
  if (!conn_ && !connect()) {
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(100)));
    return std::nullopt;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  amqp_maybe_release_buffers(conn_);
  amqp_envelope_t envelope;
  const amqp_rpc_reply_t reply = amqp_consume_message(conn_, &envelope, &tv, 0);
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_TIMEOUT) {
    return std::nullopt;
  }
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    disconnect(detail::describe_rpc_reply(reply));
    return std::nullopt;
  }
  Delivery d;
  d.tag = envelope.delivery_tag;
  d.connection = generation_;
  d.redelivered = envelope.redelivered != 0;
  d.exchange = string_of(envelope.exchange);
  d.routing_key = string_of(envelope.routing_key);
  d.body = string_of(envelope.message.body);
  const amqp_basic_properties_t& p = envelope.message.properties;
  if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) d.message_id = string_of(p.message_id);
  if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) d.content_type = string_of(p.content_type);
  if (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) d.timestamp = p.timestamp;
  if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < p.headers.num_entries; ++i) {
      d.headers[string_of(p.headers.entries[i].key)] = field_text(p.headers.entries[i].value);
    }
  }
  amqp_destroy_envelope(&envelope);
  return d;
}

void AmqpConsumer::ack(const Delivery& d) {
  if (!conn_ || d.connection != generation_) return;
  if (amqp_basic_ack(conn_, kChannel, d.tag, 0) != AMQP_STATUS_OK) disconnect("basic.ack failed");
}

void AmqpConsumer::reject(const Delivery& d, bool requeue) {
  if (!conn_ || d.connection != generation_) return;
  if (amqp_basic_reject(conn_, kChannel, d.tag, requeue ? 1 : 0) != AMQP_STATUS_OK) disconnect("basic.reject failed");
}

}  // namespace pix::amqp
