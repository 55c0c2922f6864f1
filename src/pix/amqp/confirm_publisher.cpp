#include "pix/amqp/confirm_publisher.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "pix/amqp/confirm_tracker.hpp"
#include "pix/amqp/connection.hpp"
#include "pix/amqp/frame_codec.hpp"
#include "pix/amqp/probe_queue.hpp"
#include "pix/broker/guarded_callback.hpp"
#include "pix/util/invariant.hpp"
#include "pix/util/text.hpp"

// I/O model. rabbitmq-c does the handshake and the setup RPCs; after that this file owns the
// socket. Frames are encoded with rabbitmq-c's public encoders into one buffer (frame_codec.hpp)
// and written with non-blocking send(), and what arrives is decoded with amqp_handle_input().
// The confirms, returns and the verdicts they make are kept by ConfirmTracker
// (confirm_tracker.hpp), which knows nothing of the socket. Compared with
// amqp_basic_publish() this turns three blocking send() calls per message into one non-blocking
// write per batch, and the thread never blocks on a broker that stops reading, so timeouts,
// probes and drain keep working. Heartbeats, which rabbitmq-c would only handle inside its own
// calls, are therefore sent and checked here. Only whole frames are handed to the decoder, so
// between loop turns it holds no partial frame and its memory pools can always be recycled.
//
// Already out of this file: the framing (frame_codec), the confirms and their verdicts
// (confirm_tracker), the readiness probes (probe_queue). What remains (~900 lines) is one state
// machine around one socket: connection lifecycle, inbound dispatch, outbound batching and the
// clocks all read and write the same per-connection members (conn_, out_, in_, batch_,
// blocked_now_, loss_reason_) on the one thread. Cutting it further would mean a header exposing
// Impl, or passing that state between units; the one cut left that would stand alone is the
// whole-frame reader (read_socket, decode_whole_frames and in_, ~80 lines).

namespace pix::amqp {

using broker::OutboundEvent;
using broker::ProbeCallback;
using broker::PublishCallback;
using broker::PublishResult;
using broker::PublishStatus;

namespace detail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr amqp_channel_t kPublishChannel = 1;
constexpr amqp_channel_t kProbeChannel = 2;
// Bounds the work of one loop turn, so that reading confirms, timers and probes are never
// starved by a long burst of publishes.
constexpr std::size_t kMaxPublishesPerTurn = 4096;
constexpr std::size_t kReadChunk = std::size_t{128} * 1024;
constexpr std::size_t kMaxReadsPerTurn = 4;
// Beyond this many unsent bytes the broker is not keeping up (or not reading): stop encoding
// until the socket drains, so that memory stays bounded by max_in_flight, not by the backlog.
constexpr std::size_t kMaxUnsentBytes = std::size_t{8} * 1024 * 1024;
// Upper bound on a poll() sleep, so that clock-driven work is never late by more than this.
constexpr std::chrono::milliseconds kMaxPollWait{500};
// How long a polite close may wait for our last bytes to leave.
constexpr std::chrono::milliseconds kCloseFlushWait{1000};

std::string describe_close(std::uint16_t code, amqp_bytes_t text) {
  return std::to_string(code) + " " + string_of(text);
}

std::string millis_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

/// An accepted event the thread has not sent yet.
struct Queued {
  OutboundEvent event;
  PublishCallback done;
  Clock::time_point accepted_at;
};

/// A basic.return whose content header (and body) frames are still to come.
struct IncomingReturn {
  std::uint16_t reply_code = 0;
  std::string reply_text;
  std::string routing_key;
  bool header_seen = false;
  std::uint64_t body_remaining = 0;
};

}  // namespace
}  // namespace detail

class ConfirmPublisher::Impl {
 public:
  using Clock = detail::Clock;

  explicit Impl(Options options)
      : options_(std::move(options)), redacted_url_(options_.url.redacted()), unavailable_reason_(not_connected_yet()) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd for the AMQP publisher");
    thread_ = std::thread([this] { run(); });
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  ~Impl() {
    drain(options_.confirm_timeout);
    ::close(wake_fd_);
  }

  void publish(OutboundEvent event, PublishCallback done) {
    PublishResult refusal;
    bool accepted = false;
    bool wake = false;
    const auto accepted_at = Clock::now();
    {
      std::lock_guard lock(mutex_);
      if (draining_) {
        refusal.status = PublishStatus::kShuttingDown;
        refusal.detail = "the AMQP publisher is shutting down";
      } else if (!connected_ || blocked_) {
        refusal.status = PublishStatus::kBrokerUnavailable;
        refusal.detail = unavailable_reason_;
      } else if (in_flight_.load(std::memory_order_relaxed) >= options_.max_in_flight) {
        refusal.status = PublishStatus::kQueueFull;
        refusal.detail = "AMQP publisher has " + std::to_string(options_.max_in_flight) + " events in flight";
      } else {
        wake = queue_.empty();
        queue_.push_back(detail::Queued{std::move(event), std::move(done), accepted_at});
        in_flight_.fetch_add(1, std::memory_order_relaxed);
        accepted = true;
      }
    }
    if (!accepted) {
      invoke(done, std::move(refusal));
    } else if (wake) {
      // Only the first event into an empty queue wakes the thread: it takes the whole queue.
      notify_thread();
    }
  }

  void probe(ProbeCallback done) {
    std::string refusal;
    bool accepted = false;
    {
      std::lock_guard lock(mutex_);
      if (draining_) {
        refusal = "the AMQP publisher is shutting down";
      } else if (!connected_ || blocked_) {
        refusal = unavailable_reason_;
      } else {
        probe_requests_.push_back(std::move(done));
        accepted = true;
      }
    }
    if (accepted) {
      notify_thread();
    } else {
      detail::answer_probe(done, false, std::move(refusal));
    }
  }

  std::size_t drain(std::chrono::milliseconds deadline) {
    std::lock_guard drain_lock(drain_mutex_);
    if (!thread_.joinable()) return 0;
    {
      std::lock_guard lock(mutex_);
      draining_ = true;
      drain_deadline_ = Clock::now() + deadline;
    }
    state_changed_.notify_all();
    notify_thread();
    thread_.join();
    return left_without_verdict_;
  }

  std::size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }

  bool connected() const noexcept {
    std::lock_guard lock(mutex_);
    return connected_ && !blocked_;
  }

  bool wait_connected(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    state_changed_.wait_for(lock, timeout, [this] { return (connected_ && !blocked_) || draining_; });
    return connected_ && !blocked_;
  }

 private:
  // ---- shared with callers ---------------------------------------------------------------

  static std::string not_connected_yet() { return "not connected to RabbitMQ yet"; }

  void notify_thread() noexcept {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the thread is woken either way.
    [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
  }

  void consume_wakeups() noexcept {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
  }

  void set_state(bool is_connected, bool is_blocked, std::string reason) {
    {
      std::lock_guard lock(mutex_);
      connected_ = is_connected;
      blocked_ = is_blocked;
      unavailable_reason_ = std::move(reason);
    }
    state_changed_.notify_all();
  }

  bool draining_now() {
    std::lock_guard lock(mutex_);
    return draining_;
  }

  // ---- callbacks -------------------------------------------------------------------------

  // User callbacks run on this publisher's thread (and, for refusals, the caller's): what they
  // throw is logged and counted there, never let loose in the I/O loop.
  static void invoke(PublishCallback& done, PublishResult result) noexcept {
    if (!done) return;
    broker::guarded("amqp publish callback", [&] { done(std::move(result)); });
  }

  /// Every accepted event ends here exactly once.
  void answer(PublishCallback& done, PublishStatus status, std::string detail = {}) noexcept {
    const std::size_t before = in_flight_.fetch_sub(1, std::memory_order_relaxed);
    if (before == 0) in_flight_.fetch_add(1, std::memory_order_relaxed);  // an underflow would refuse every publish
    PIX_BUG(before > 0, "amqp publisher: a verdict ({}) for an event not counted in flight", broker::to_string(status));
    PublishResult result;
    result.status = status;
    result.detail = std::move(detail);
    invoke(done, std::move(result));
  }

  // ---- the publisher thread: connection lifecycle ----------------------------------------

  void run() {
    std::chrono::milliseconds backoff = options_.reconnect_backoff_initial;
    std::size_t failed_attempts = 0;
    for (;;) {
      if (draining_now()) break;
      if (!connect(failed_attempts)) {
        ++failed_attempts;
        if (!sleep_unless_draining(backoff)) break;
        backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
        continue;
      }
      failed_attempts = 0;
      backoff = options_.reconnect_backoff_initial;
      if (run_connected()) break;
      // The first attempt after a loss goes out at once: a closed channel or an operator's forced
      // close leaves a healthy broker behind.
    }
    std::vector<ProbeCallback> probes;
    {
      std::lock_guard lock(mutex_);
      probes.swap(probe_requests_);
      connected_ = false;
      unavailable_reason_ = "the AMQP publisher is shut down";
    }
    state_changed_.notify_all();
    for (auto& p : probes) detail::answer_probe(p, false, "the AMQP publisher is shut down");
  }

  /// Waits `delay` or until drain() starts; false when draining.
  bool sleep_unless_draining(std::chrono::milliseconds delay) {
    const auto until = Clock::now() + delay;
    for (;;) {
      if (draining_now()) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return true;
      pollfd fd{wake_fd_, POLLIN, 0};
      if (::poll(&fd, 1, static_cast<int>(left.count()) + 1) > 0) consume_wakeups();
    }
  }

  bool connect(std::size_t failed_attempts) {
    const int heartbeat_s = static_cast<int>(options_.heartbeat.count());
    detail::OpenedConnection opened =
        detail::open_connection(options_.url, options_.connect_timeout, heartbeat_s, options_.connection_name);
    std::string error = std::move(opened.error);
    conn_ = opened.conn;
    ssl_ = opened.ssl;
    if (conn_ != nullptr) error = setup_channels();
    if (error.empty()) error = take_over_socket();
    if (!error.empty()) {
      if (conn_ != nullptr) {
        detail::close_connection(conn_);
        conn_ = nullptr;
      }
      // One line per outage, not one per attempt: attempts repeat every couple of seconds.
      if (failed_attempts == 0) {
        spdlog::warn("amqp publisher: cannot connect to {}: {} (retrying in the background)", redacted_url_, error);
      } else {
        spdlog::debug("amqp publisher: connect attempt {} to {} failed: {}", failed_attempts + 1, redacted_url_, error);
      }
      set_state(false, false, "RabbitMQ unavailable: " + error);
      return false;
    }
    spdlog::info("amqp publisher: connected to {} (exchange '{}', heartbeat {} s{})", redacted_url_, options_.exchange,
                 negotiated_heartbeat_.count(),
                 failed_attempts > 0 ? ", after " + std::to_string(failed_attempts) + " failed attempts" : "");
    set_state(true, blocked_now_, blocked_now_ ? blocked_reason_ : std::string{});
    return true;
  }

  std::string setup_channels() {
    amqp_channel_open(conn_, detail::kPublishChannel);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn_);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return "channel.open failed: " + detail::describe_rpc_reply(reply);
    amqp_confirm_select(conn_, detail::kPublishChannel);
    reply = amqp_get_rpc_reply(conn_);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return "confirm.select failed: " + detail::describe_rpc_reply(reply);
    amqp_channel_open(conn_, detail::kProbeChannel);
    reply = amqp_get_rpc_reply(conn_);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      return "channel.open (probe) failed: " + detail::describe_rpc_reply(reply);
    }
    return {};
  }

  /// Resets the per-connection state and moves socket I/O from rabbitmq-c to this class.
  std::string take_over_socket() {
    socket_fd_ = amqp_get_sockfd(conn_);
    transport_ = detail::Transport(socket_fd_, ssl_);
    frame_max_ = static_cast<std::size_t>(amqp_get_frame_max(conn_));
    negotiated_heartbeat_ = std::chrono::seconds{amqp_get_heartbeat(conn_)};
    incoming_return_.reset();
    probes_.on_channel_open();
    blocked_now_ = false;
    close_politely_ = false;
    out_.clear();
    last_inbound_ = last_outbound_ = Clock::now();

    // Bounds how long written data may sit unacknowledged by the peer's TCP stack: without it a
    // broker that vanished without a RST would only be noticed by the heartbeat check.
    const auto user_timeout = std::max<std::chrono::milliseconds>(2 * negotiated_heartbeat_, std::chrono::seconds{10});
    const auto user_timeout_ms = static_cast<unsigned int>(user_timeout.count());
    if (::setsockopt(socket_fd_, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms) != 0) {
      spdlog::debug("amqp publisher: TCP_USER_TIMEOUT not set: {}", util::errno_text(errno));
    }

    // Frames rabbitmq-c read past the last setup reply are still in its buffers, possibly with
    // a frame half read: finish those with rabbitmq-c, so that our reads start on a frame boundary.
    in_.resize(frame_max_ + detail::kReadChunk);
    in_size_ = 0;
    const auto deadline = Clock::now() + options_.connect_timeout;
    while (amqp_frames_enqueued(conn_) != 0 || amqp_data_in_buffer(conn_) != 0 || amqp_release_buffers_ok(conn_) == 0) {
      static const timeval kNoWait{0, 0};
      static const timeval kShortWait{0, 50'000};
      const bool buffered = amqp_frames_enqueued(conn_) != 0 || amqp_data_in_buffer(conn_) != 0;
      amqp_frame_t frame;
      const int status = amqp_simple_wait_frame_noblock(conn_, &frame, buffered ? &kNoWait : &kShortWait);
      if (status == AMQP_STATUS_TIMEOUT) {
        if (Clock::now() >= deadline) return "a frame from the broker stayed incomplete";
        continue;
      }
      if (status != AMQP_STATUS_OK) return std::string{"read failed: "} + amqp_error_string2(status);
      if (!dispatch(frame)) return std::exchange(loss_reason_, {});
    }
    return {};
  }

  /// Gives rabbitmq-c's decoder the bytes of a frame we hold half read, so that its own reads
  /// (the close handshake) continue the stream where we stopped.
  void hand_back_socket() noexcept {
    if (in_size_ == 0) return;
    amqp_bytes_t input;
    input.bytes = in_.data();
    input.len = in_size_;
    amqp_frame_t frame;
    amqp_handle_input(conn_, input, &frame);
    in_size_ = 0;
  }

  /// Runs while connected; true when drained (the thread should exit), false on connection loss.
  bool run_connected() {
    for (;;) {
      const auto now = Clock::now();
      if (!read_socket(now)) return on_connection_lost();

      bool draining = false;
      Clock::time_point drain_deadline;
      take_work(draining, drain_deadline);

      if (blocked_now_) {
        fail_unsent(PublishStatus::kBrokerUnavailable, blocked_reason_);
        probes_.fail_unsent(blocked_reason_);
      } else {
        probes_.send();
        if (!encode_batch(now)) return on_connection_lost();
      }
      send_heartbeat_if_due(now);
      if (!flush(now)) return on_connection_lost();

      expire(now);
      if (negotiated_heartbeat_.count() > 0 && now - last_inbound_ > 2 * negotiated_heartbeat_) {
        loss_reason_ = "no heartbeat from the broker for " + std::to_string(2 * negotiated_heartbeat_.count()) + " s";
        return on_connection_lost();
      }

      if (draining) {
        const bool settled = unsent() == 0 && confirms_.empty();
        if (settled || now >= drain_deadline) {
          finish_drain();
          return true;
        }
      }

      amqp_maybe_release_buffers(conn_);
      if (!wait_for_io(now, draining ? std::optional{drain_deadline} : std::nullopt)) return on_connection_lost();
    }
  }

  void take_work(bool& draining, Clock::time_point& drain_deadline) {
    const bool batch_done = batch_pos_ >= batch_.size();
    if (batch_done) {
      batch_.clear();
      batch_pos_ = 0;
    }
    std::lock_guard lock(mutex_);
    if (batch_done) batch_.swap(queue_);
    if (!probe_requests_.empty()) {
      const auto now = Clock::now();
      for (auto& p : probe_requests_) probes_.add(std::move(p), now);
      probe_requests_.clear();
    }
    draining = draining_;
    drain_deadline = drain_deadline_;
  }

  std::size_t unsent() const noexcept { return batch_.size() - batch_pos_; }

  // ---- inbound ---------------------------------------------------------------------------

  /// Reads and handles whatever the socket holds, without blocking.
  bool read_socket(Clock::time_point now) {
    for (std::size_t round = 0; round < detail::kMaxReadsPerTurn; ++round) {
      const std::size_t room = in_.size() - in_size_;
      const long n = transport_.recv_some(in_.data() + in_size_, room);
      if (n == 0) return true;
      if (n < 0) {
        loss_reason_ = transport_.error();
        return false;
      }
      last_inbound_ = now;
      in_size_ += static_cast<std::size_t>(n);
      if (!decode_whole_frames()) return false;
      // A short read drained the socket; TLS hands out one record at a time, so ask it.
      if (static_cast<std::size_t>(n) < room && !transport_.buffered()) return true;
    }
    return true;
  }

  /// Decodes and handles every complete frame in in_, keeping a trailing partial one.
  bool decode_whole_frames() {
    std::size_t pos = 0;
    while (in_size_ - pos >= detail::kFrameHeaderSize) {
      std::uint8_t* frame_start = in_.data() + pos;
      const std::size_t total = detail::frame_size(frame_start);
      if (total > frame_max_) {
        loss_reason_ = "the broker sent a frame larger than frame_max";
        return false;
      }
      if (in_size_ - pos < total) break;
      amqp_bytes_t input;
      input.bytes = frame_start;
      input.len = total;
      amqp_frame_t frame;
      const int consumed = amqp_handle_input(conn_, input, &frame);
      if (consumed < 0) {
        loss_reason_ = std::string{"bad data from the broker: "} + amqp_error_string2(consumed);
        return false;
      }
      pos += total;
      if (frame.frame_type != 0 && !dispatch(frame)) return false;
    }
    if (pos > 0) {
      std::memmove(in_.data(), in_.data() + pos, in_size_ - pos);
      in_size_ -= pos;
    }
    return true;
  }

  bool dispatch(const amqp_frame_t& frame) {
    if (frame.frame_type == AMQP_FRAME_METHOD) {
      switch (frame.channel) {
        case 0:
          return on_connection_method(frame.payload.method);
        case detail::kPublishChannel:
          return on_publish_channel_method(frame.payload.method);
        case detail::kProbeChannel:
          probes_.on_method(frame.payload.method);
          return true;
        default:
          spdlog::debug("amqp publisher: ignoring {} on channel {}", amqp_method_name(frame.payload.method.id),
                        frame.channel);
          return true;
      }
    }
    if (frame.channel == detail::kPublishChannel && incoming_return_) {
      if (frame.frame_type == AMQP_FRAME_HEADER) {
        on_return_header(frame);
      } else if (frame.frame_type == AMQP_FRAME_BODY) {
        const auto len = frame.payload.body_fragment.len;
        incoming_return_->body_remaining -= std::min<std::uint64_t>(len, incoming_return_->body_remaining);
        if (incoming_return_->body_remaining == 0) incoming_return_.reset();
      }
    }
    // Heartbeats only prove the broker is alive, which read_socket() already noted.
    return true;
  }

  bool on_connection_method(const amqp_method_t& method) {
    switch (method.id) {
      case AMQP_CONNECTION_CLOSE_METHOD: {
        const auto* m = static_cast<const amqp_connection_close_t*>(method.decoded);
        loss_reason_ = "broker closed the connection: " + detail::describe_close(m->reply_code, m->reply_text);
        amqp_connection_close_ok_t ok{};
        append_method(0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        flush(Clock::now());
        return false;
      }
      case AMQP_CONNECTION_BLOCKED_METHOD: {
        const auto* m = static_cast<const amqp_connection_blocked_t*>(method.decoded);
        blocked_now_ = true;
        blocked_reason_ = "RabbitMQ is blocking publishers: " + detail::string_of(m->reason);
        spdlog::warn("amqp publisher: {}", blocked_reason_);
        set_state(true, true, blocked_reason_);
        return true;
      }
      case AMQP_CONNECTION_UNBLOCKED_METHOD:
        blocked_now_ = false;
        spdlog::info("amqp publisher: RabbitMQ unblocked publishers");
        set_state(true, false, {});
        return true;
      default:
        spdlog::debug("amqp publisher: ignoring {} on channel 0", amqp_method_name(method.id));
        return true;
    }
  }

  bool on_publish_channel_method(const amqp_method_t& method) {
    switch (method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* m = static_cast<const amqp_basic_ack_t*>(method.decoded);
        return trust_confirms(confirms_.on_ack(m->delivery_tag, m->multiple != 0));
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* m = static_cast<const amqp_basic_nack_t*>(method.decoded);
        return trust_confirms(confirms_.on_nack(m->delivery_tag, m->multiple != 0));
      }
      case AMQP_BASIC_RETURN_METHOD: {
        const auto* m = static_cast<const amqp_basic_return_t*>(method.decoded);
        incoming_return_.emplace();
        incoming_return_->reply_code = m->reply_code;
        incoming_return_->reply_text = detail::string_of(m->reply_text);
        incoming_return_->routing_key = detail::string_of(m->routing_key);
        return true;
      }
      case AMQP_CHANNEL_CLOSE_METHOD: {
        const auto* m = static_cast<const amqp_channel_close_t*>(method.decoded);
        loss_reason_ = "broker closed the publishing channel: " + detail::describe_close(m->reply_code, m->reply_text);
        amqp_channel_close_ok_t ok{};
        append_method(detail::kPublishChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        // The connection itself is healthy: it can be closed politely before reconnecting.
        close_politely_ = true;
        return false;
      }
      default:
        spdlog::debug("amqp publisher: ignoring {} on the publishing channel", amqp_method_name(method.id));
        return true;
    }
  }

  void on_return_header(const amqp_frame_t& frame) {
    auto& ret = *incoming_return_;
    if (ret.header_seen) return;
    ret.header_seen = true;
    ret.body_remaining = frame.payload.properties.body_size;
    const auto* props = static_cast<const amqp_basic_properties_t*>(frame.payload.properties.decoded);
    const bool has_id = props != nullptr && (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0;
    const std::string_view id =
        has_id ? std::string_view{static_cast<const char*>(props->message_id.bytes), props->message_id.len}
               : std::string_view{};
    if (!confirms_.on_return(ret.reply_code, id, ret.routing_key)) {
      spdlog::warn("amqp publisher: basic.return ({} {}) for routing key '{}' matches no unconfirmed message",
                   ret.reply_code, ret.reply_text, ret.routing_key);
    } else if (ret.reply_code != detail::kReplyNoRoute) {
      spdlog::warn("amqp publisher: message {} returned: {} {}", id, ret.reply_code, ret.reply_text);
    }
    if (ret.body_remaining == 0) incoming_return_.reset();
  }

  /// False when a confirm named a delivery tag never sent: the broker and this publisher disagree
  /// on what was confirmed, so the connection is dropped and every unconfirmed event answered
  /// "may exist" (504), never acked.
  bool trust_confirms(std::string violation) {
    // A real RabbitMQ never confirms a tag it was not sent (AmqpUnknownDeliveryTag drives this
    // with a fake broker): an invariant of the protocol, logged and counted.
    PIX_BUG(violation.empty(), "amqp publisher: {}", violation);
    if (violation.empty()) return true;
    loss_reason_ = std::move(violation);
    return false;
  }

  // ---- outbound --------------------------------------------------------------------------

  /// Queues a method frame for the next flush(). Our own small methods always fit a frame.
  void append_method(amqp_channel_t channel, amqp_method_number_t id, void* method) {
    const int status = detail::append_method_frame(out_, frame_max_, channel, id, method);
    PIX_BUG(status >= 0, "amqp publisher: cannot encode {}: {}", amqp_method_name(id), amqp_error_string2(status));
  }

  /// Encodes queued events as publish frames into out_; each becomes unconfirmed.
  bool encode_batch(Clock::time_point now) {
    const std::size_t end = std::min(batch_.size(), batch_pos_ + detail::kMaxPublishesPerTurn);
    while (batch_pos_ < end && out_.unsent_size() < detail::kMaxUnsentBytes) {
      detail::Queued& item = batch_[batch_pos_];
      const int status = encoder_.append(out_, frame_max_, detail::kPublishChannel, item.event);
      if (status < 0) {
        // Nothing was appended: the stream stays whole and the connection is fine.
        answer(item.done, PublishStatus::kRejected,
               std::string{"cannot encode the message (routing key, headers or properties too large): "} +
                   amqp_error_string2(status));
        ++batch_pos_;
        continue;
      }
      confirms_.on_sent(std::move(item.event.id), std::move(item.event.topic), std::move(item.done), now);
      ++batch_pos_;
    }
    return true;
  }

  void send_heartbeat_if_due(Clock::time_point now) {
    if (negotiated_heartbeat_.count() == 0 || out_.unsent_size() > 0) return;
    if (now - last_outbound_ < negotiated_heartbeat_ / 2) return;
    detail::append_heartbeat_frame(out_);
  }

  /// Writes as much of out_ as the socket takes now.
  bool flush(Clock::time_point now) {
    while (out_.unsent_size() > 0) {
      const long n = transport_.send_some(out_.unsent(), out_.unsent_size());
      if (n > 0) {
        out_.consume(static_cast<std::size_t>(n));
        last_outbound_ = now;
        continue;
      }
      if (n == 0) return true;
      loss_reason_ = transport_.error();
      return false;
    }
    return true;
  }

  /// Gives out_ up to `wait` to leave, for a polite close.
  void flush_before_close(std::chrono::milliseconds wait) {
    const auto until = Clock::now() + wait;
    while (out_.unsent_size() > 0 && flush(Clock::now()) && out_.unsent_size() > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return;
      pollfd fd{socket_fd_, POLLOUT, 0};
      ::poll(&fd, 1, static_cast<int>(left.count()) + 1);
    }
  }

  // ---- clocks ----------------------------------------------------------------------------

  void expire(Clock::time_point now) {
    confirms_.expire(now);

    // Unsent events only wait while the socket is backed up; the broker is not taking data.
    while (batch_pos_ < batch_.size() && now - batch_[batch_pos_].accepted_at >= options_.confirm_timeout) {
      answer(batch_[batch_pos_].done, PublishStatus::kBrokerUnavailable,
             "RabbitMQ did not take the event within " + detail::millis_text(options_.confirm_timeout) +
                 " (not reading from the connection)");
      ++batch_pos_;
    }
    probes_.expire(now);
  }

  /// Sleeps in poll() until the socket or the wake-up eventfd needs attention, or a timer is due.
  bool wait_for_io(Clock::time_point now, std::optional<Clock::time_point> drain_deadline) {
    const bool backed_up = out_.unsent_size() > 0;
    // Work left over from a capped turn goes on at once, unless it waits for the socket.
    if (unsent() > 0 && !backed_up) return true;

    Clock::time_point due = now + detail::kMaxPollWait;
    if (negotiated_heartbeat_.count() > 0) due = std::min(due, now + negotiated_heartbeat_ / 2);
    if (const auto expiry = confirms_.next_expiry()) due = std::min(due, *expiry);
    if (unsent() > 0) due = std::min(due, batch_[batch_pos_].accepted_at + options_.confirm_timeout);
    if (const auto expiry = probes_.next_expiry()) due = std::min(due, *expiry);
    if (drain_deadline) due = std::min(due, *drain_deadline);
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
    // Rounded up so that the timer really is due when poll() returns.
    // Bytes TLS already decrypted would not wake poll(): read them now.
    const int timeout_ms = wait.count() <= 0 || transport_.buffered() ? 0 : static_cast<int>(wait.count()) + 1;

    const auto socket_events =
        static_cast<short>(backed_up || transport_.wants_both_directions() ? POLLIN | POLLOUT : POLLIN);
    std::array<pollfd, 2> fds{pollfd{socket_fd_, socket_events, 0}, pollfd{wake_fd_, POLLIN, 0}};
    const int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      loss_reason_ = "poll failed: " + util::errno_text(errno);
      return false;
    }
    if (n > 0 && (fds[1].revents & POLLIN) != 0) consume_wakeups();
    return true;
  }

  // ---- endings ---------------------------------------------------------------------------

  /// Events not handed to the broker: `status`, with no copy anywhere.
  void fail_unsent(PublishStatus status, const std::string& detail) {
    while (batch_pos_ < batch_.size()) {
      answer(batch_[batch_pos_].done, status, detail);
      ++batch_pos_;
    }
  }

  /// Answers everything that depended on this connection and frees it; the caller reconnects.
  bool on_connection_lost() {
    const std::string reason = loss_reason_.empty() ? std::string{"connection lost"} : std::exchange(loss_reason_, {});

    // First refuse new work, so that nothing enters the queue behind this swap, nor while a
    // polite close below waits for the broker.
    std::vector<detail::Queued> queued;
    std::vector<ProbeCallback> probe_requests;
    {
      std::lock_guard lock(mutex_);
      connected_ = false;
      blocked_ = false;
      unavailable_reason_ = "RabbitMQ connection lost: " + reason;
      queued.swap(queue_);
      probe_requests.swap(probe_requests_);
    }
    state_changed_.notify_all();

    if (close_politely_) {
      flush_before_close(detail::kCloseFlushWait);
      hand_back_socket();
      detail::close_connection(conn_);
    } else {
      amqp_destroy_connection(conn_);
    }
    conn_ = nullptr;
    ssl_ = nullptr;
    transport_ = detail::Transport();
    socket_fd_ = -1;
    out_.clear();
    in_size_ = 0;

    const std::size_t unconfirmed = confirms_.unanswered();
    spdlog::warn("amqp publisher: lost the connection to {}: {} ({} unconfirmed events timed out, {} unsent failed)",
                 redacted_url_, reason, unconfirmed, unsent() + queued.size());

    confirms_.fail_all("connection lost before confirm; the event may have been stored (" + reason + ")");
    const std::string unsent_detail = "connection lost before the event was sent (" + reason + ")";
    fail_unsent(PublishStatus::kBrokerUnavailable, unsent_detail);
    for (auto& item : queued) answer(item.done, PublishStatus::kBrokerUnavailable, unsent_detail);
    probes_.fail_all("RabbitMQ connection lost: " + reason);
    for (auto& p : probe_requests) detail::answer_probe(p, false, "RabbitMQ connection lost: " + reason);
    return false;
  }

  void finish_drain() {
    std::vector<detail::Queued> queued;
    {
      std::lock_guard lock(mutex_);
      queued.swap(queue_);
    }
    const std::size_t unconfirmed = confirms_.unanswered();
    left_without_verdict_ = unconfirmed + unsent() + queued.size();
    confirms_.fail_all("the publisher shut down before the broker confirmed; the event may have been stored");
    const std::string unsent_detail = "the publisher shut down before the event was sent";
    fail_unsent(PublishStatus::kShuttingDown, unsent_detail);
    for (auto& item : queued) answer(item.done, PublishStatus::kShuttingDown, unsent_detail);
    probes_.fail_all("the AMQP publisher is shut down");
    if (left_without_verdict_ > 0) {
      spdlog::warn("amqp publisher: drained with {} events left without a broker verdict", left_without_verdict_);
    }
    flush_before_close(detail::kCloseFlushWait);
    hand_back_socket();
    detail::close_connection(conn_);
    conn_ = nullptr;
    ssl_ = nullptr;
    transport_ = detail::Transport();
    socket_fd_ = -1;
    spdlog::info("amqp publisher: closed the connection to {}", redacted_url_);
  }

  const Options options_;
  const std::string redacted_url_;
  int wake_fd_ = -1;

  // Shared between callers and the thread, under mutex_.
  mutable std::mutex mutex_;
  mutable std::condition_variable state_changed_;
  std::vector<detail::Queued> queue_;
  std::vector<ProbeCallback> probe_requests_;
  bool connected_ = false;
  bool blocked_ = false;
  bool draining_ = false;
  Clock::time_point drain_deadline_;
  std::string unavailable_reason_;
  std::atomic<std::size_t> in_flight_{0};

  std::mutex drain_mutex_;
  std::size_t left_without_verdict_ = 0;  // written by the thread before it ends, read after join

  // Owned by the thread.
  amqp_connection_state_t conn_ = nullptr;
  SSL* ssl_ = nullptr;  // owned by conn_
  detail::Transport transport_;
  int socket_fd_ = -1;
  std::size_t frame_max_ = 0;
  std::chrono::seconds negotiated_heartbeat_{0};
  Clock::time_point last_inbound_;
  Clock::time_point last_outbound_;
  detail::OutBuffer out_;
  std::vector<std::uint8_t> in_;  ///< received bytes; holds at most one partial frame between turns
  std::size_t in_size_ = 0;
  std::vector<detail::Queued> batch_;
  std::size_t batch_pos_ = 0;
  detail::ConfirmTracker confirms_{options_.confirm_timeout,
                                   [this](PublishCallback& done, PublishStatus status, std::string detail) {
                                     answer(done, status, std::move(detail));
                                   }};
  std::optional<detail::IncomingReturn> incoming_return_;
  detail::ProbeQueue probes_{
      options_.exchange, detail::kProbeChannel, options_.probe_timeout,
      [this](amqp_channel_t channel, amqp_method_number_t id, void* method) { append_method(channel, id, method); }};
  bool blocked_now_ = false;
  std::string blocked_reason_;
  std::string loss_reason_;
  bool close_politely_ = false;
  detail::PublishEncoder encoder_{options_.exchange};

  // Declared last: started in the constructor body, once every member it uses exists.
  std::thread thread_;
};

ConfirmPublisher::ConfirmPublisher(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

ConfirmPublisher::~ConfirmPublisher() = default;

void ConfirmPublisher::publish(broker::OutboundEvent event, broker::PublishCallback done) {
  impl_->publish(std::move(event), std::move(done));
}

void ConfirmPublisher::probe(broker::ProbeCallback done) {
  impl_->probe(std::move(done));
}

std::size_t ConfirmPublisher::drain(std::chrono::milliseconds deadline) {
  return impl_->drain(deadline);
}

std::size_t ConfirmPublisher::in_flight() const noexcept {
  return impl_->in_flight();
}

bool ConfirmPublisher::connected() const noexcept {
  return impl_->connected();
}

bool ConfirmPublisher::wait_connected(std::chrono::milliseconds timeout) const {
  return impl_->wait_connected(timeout);
}

}  // namespace pix::amqp
