#include "support/amqp_test_consumer.hpp"

#include <amqp.h>
#include <sys/time.h>

#include <cstdlib>
#include <iostream>
#include <thread>
#include <utility>

#include "pix/amqp/connection.hpp"
#include "pix/util/random_id.hpp"

namespace pix::test {

namespace {

using Clock = std::chrono::steady_clock;
constexpr amqp_channel_t kChannel = 1;
constexpr std::chrono::milliseconds kTimeout{5000};

using amqp::detail::bytes_of;
using amqp::detail::string_of;

std::string check_rpc(amqp_connection_state_t conn, std::string_view what) {
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return {};
  return std::string{what} + " failed: " + amqp::detail::describe_rpc_reply(reply);
}

ReceivedMessage to_received(const amqp_envelope_t& envelope) {
  ReceivedMessage m;
  m.routing_key = string_of(envelope.routing_key);
  m.body = string_of(envelope.message.body);
  const amqp_basic_properties_t& p = envelope.message.properties;
  if ((p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) != 0) m.delivery_mode = p.delivery_mode;
  if ((p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) != 0) m.content_type = string_of(p.content_type);
  if ((p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) m.message_id = string_of(p.message_id);
  if ((p._flags & AMQP_BASIC_TIMESTAMP_FLAG) != 0) m.timestamp = p.timestamp;
  if ((p._flags & AMQP_BASIC_APP_ID_FLAG) != 0) m.app_id = string_of(p.app_id);
  if ((p._flags & AMQP_BASIC_HEADERS_FLAG) != 0) {
    for (int i = 0; i < p.headers.num_entries; ++i) {
      const amqp_table_entry_t& e = p.headers.entries[i];
      if (e.value.kind == AMQP_FIELD_KIND_UTF8 || e.value.kind == AMQP_FIELD_KIND_BYTES) {
        m.headers[string_of(e.key)] = string_of(e.value.value.bytes);
      }
    }
  }
  return m;
}

/// A connection for one admin call; closed when it goes out of scope.
struct AdminConnection {
  amqp_connection_state_t conn = nullptr;
  std::string error;

  explicit AdminConnection(const amqp::AmqpUrl& url) {
    amqp::detail::OpenedConnection opened = amqp::detail::open_connection(url, kTimeout, 0, "pix-pubsub test admin");
    if (opened.conn == nullptr) {
      error = std::move(opened.error);
      return;
    }
    conn = opened.conn;
    amqp_channel_open(conn, kChannel);
    error = check_rpc(conn, "channel.open");
  }
  AdminConnection(const AdminConnection&) = delete;
  AdminConnection& operator=(const AdminConnection&) = delete;
  ~AdminConnection() { amqp::detail::close_connection(conn); }
};

}  // namespace

std::string TestRabbit::url_text() {
  const char* env = std::getenv("PIX_RABBIT_URL");
  return env != nullptr && *env != '\0' ? std::string{env} : std::string{"amqp://guest:guest@127.0.0.1:5672/"};
}

amqp::AmqpUrl TestRabbit::url() {
  const amqp::AmqpUrlParse parsed = amqp::parse_amqp_url(url_text());
  if (!parsed) {
    std::cerr << "PIX_RABBIT_URL is not a valid AMQP URL: " << parsed.error << '\n';
    std::abort();
  }
  return *parsed.url;
}

std::string TestRabbit::unique_name(std::string_view prefix) {
  return std::string{prefix} + util::random_hex(6);
}

AmqpTestConsumer::AmqpTestConsumer(const amqp::AmqpUrl& url, std::string_view exchange, std::string_view binding_key) {
  amqp::detail::OpenedConnection opened = amqp::detail::open_connection(url, kTimeout, 0, "pix-pubsub test consumer");
  if (opened.conn == nullptr) {
    error_ = std::move(opened.error);
    return;
  }
  conn_ = opened.conn;
  amqp_channel_open(conn_, kChannel);
  if (error_ = check_rpc(conn_, "channel.open"); !error_.empty()) return;

  const amqp_queue_declare_ok_t* declared =
      amqp_queue_declare(conn_, kChannel, amqp_empty_bytes, 0, 0, /*exclusive=*/1, /*auto_delete=*/1, amqp_empty_table);
  if (error_ = check_rpc(conn_, "queue.declare"); !error_.empty()) return;
  queue_ = string_of(declared->queue);

  amqp_queue_bind(conn_, kChannel, bytes_of(queue_), bytes_of(exchange), bytes_of(binding_key), amqp_empty_table);
  if (error_ = check_rpc(conn_, "queue.bind"); !error_.empty()) return;

  amqp_basic_consume(conn_, kChannel, bytes_of(queue_), amqp_empty_bytes, 0, /*no_ack=*/1, /*exclusive=*/1,
                     amqp_empty_table);
  error_ = check_rpc(conn_, "basic.consume");
}

AmqpTestConsumer::~AmqpTestConsumer() {
  amqp::detail::close_connection(conn_);
}

std::vector<ReceivedMessage> AmqpTestConsumer::receive(std::size_t n, std::chrono::milliseconds timeout) {
  std::vector<ReceivedMessage> received;
  if (conn_ == nullptr || !error_.empty()) return received;
  received.reserve(n);
  const auto deadline = Clock::now() + timeout;
  while (received.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(left.count() / 1'000'000);
    tv.tv_usec = static_cast<suseconds_t>(left.count() % 1'000'000);
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(conn_);
    const amqp_rpc_reply_t reply = amqp_consume_message(conn_, &envelope, &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      received.push_back(to_received(envelope));
      amqp_destroy_envelope(&envelope);
      continue;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_TIMEOUT) break;
    error_ = "consume failed: " + amqp::detail::describe_rpc_reply(reply);
    break;
  }
  return received;
}

amqp::AmqpOpResult declare_plain_exchange(const amqp::AmqpUrl& url, std::string_view name) {
  AdminConnection admin(url);
  if (!admin.error.empty()) return {admin.error};
  amqp_exchange_declare(admin.conn, kChannel, bytes_of(name), amqp_cstring_bytes("topic"), 0, /*durable=*/0,
                        /*auto_delete=*/0, 0, amqp_empty_table);
  return {check_rpc(admin.conn, "exchange.declare")};
}

std::optional<std::uint32_t> queue_message_count(const amqp::AmqpUrl& url, std::string_view queue, std::string* error) {
  AdminConnection admin(url);
  std::string why = admin.error;
  if (why.empty()) {
    const amqp_queue_declare_ok_t* ok =
        amqp_queue_declare(admin.conn, kChannel, bytes_of(queue), /*passive=*/1, 0, 0, 0, amqp_empty_table);
    why = check_rpc(admin.conn, "queue.declare (passive)");
    if (why.empty()) return ok->message_count;
  }
  if (error != nullptr) *error = std::move(why);
  return std::nullopt;
}

std::string settle_quorum_queues(const amqp::AmqpUrl& url, const amqp::TopologyOptions& options) {
  const amqp::TopologyNames names = amqp::topology_names(options);
  std::vector<std::string> queues = names.queues;
  queues.push_back(names.unrouted);
  queues.push_back(names.dead_letter_queue);
  AdminConnection admin(url);
  if (!admin.error.empty()) return admin.error;
  for (const auto& queue : queues) {
    // A dequeue is a Raft command: its answer (a message or get-empty) means the queue has a
    // leader that applies commands again.
    const amqp_rpc_reply_t reply = amqp_basic_get(admin.conn, kChannel, bytes_of(queue), /*no_ack=*/1);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return "basic.get " + queue + " failed";
    if (reply.reply.id == AMQP_BASIC_GET_OK_METHOD) {
      amqp_message_t message;
      if (amqp_read_message(admin.conn, kChannel, &message, 0).reply_type != AMQP_RESPONSE_NORMAL) {
        return "basic.get " + queue + ": the message could not be read";
      }
      amqp_destroy_message(&message);
    }
  }
  // The dead-letter workers the new leaders started check out right after the election.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return {};
}

}  // namespace pix::test
