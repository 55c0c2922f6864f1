#pragma once
/// @file AMQP 0-9-1 frame encoding for the confirm publisher, which owns its socket: the frame
/// envelope around rabbitmq-c's public method and property encoders, and the buffer of bytes
/// waiting for the socket.
///
/// rabbitmq-c encodes a method's arguments (amqp_encode_method) and a content header's properties
/// (amqp_encode_properties) into caller memory, but only amqp_basic_publish() and its other
/// blocking calls wrap them into frames and write them. Writing the envelope here lets a whole
/// batch of publishes go out in one non-blocking send().

#include <amqp.h>
#include <amqp_framing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pix/broker/publisher.hpp"

namespace pix::amqp::detail {

// AMQP 0-9-1 framing (spec 4.2.3): type(1) channel(2) size(4) payload frame-end(1).
constexpr std::size_t kFrameHeaderSize = 7;
constexpr std::size_t kFrameOverhead = kFrameHeaderSize + 1;
constexpr std::uint8_t kFrameEnd = 0xCE;

/// The whole size of the frame whose header (kFrameHeaderSize bytes) starts at `header`.
std::size_t frame_size(const std::uint8_t* header) noexcept;

/// Encodes a method frame at `p` (at most `room` bytes); its length, or a negative amqp status.
int encode_method_frame(std::uint8_t* p, std::size_t room, amqp_channel_t channel, amqp_method_number_t id,
                        void* method) noexcept;

/// Encodes a basic content header frame at `p`; its length, or a negative amqp status.
int encode_header_frame(std::uint8_t* p, std::size_t room, amqp_channel_t channel, std::uint64_t body_size,
                        amqp_basic_properties_t* props) noexcept;

/// @brief Bytes encoded but not yet written to the socket. Grows without zero-filling, and
/// reuses its memory once drained, so a steady stream of publishes allocates nothing.
class OutBuffer {
 public:
  /// Room for at least `n` more bytes at the end.
  std::uint8_t* tail(std::size_t n) {
    if (capacity_ - size_ < n) grow(n);
    return data_.get() + size_;
  }
  /// Makes the first `n` bytes written at tail() part of the unsent bytes.
  void commit(std::size_t n) noexcept { size_ += n; }
  const std::uint8_t* unsent() const noexcept { return data_.get() + sent_; }
  std::size_t unsent_size() const noexcept { return size_ - sent_; }
  /// The socket took the first `n` unsent bytes.
  void consume(std::size_t n) noexcept {
    sent_ += n;
    if (sent_ == size_) sent_ = size_ = 0;
  }
  void clear() noexcept { sent_ = size_ = 0; }

 private:
  void grow(std::size_t n);

  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t size_ = 0;
  std::size_t sent_ = 0;
  std::size_t capacity_ = 0;
};

/// Appends a method frame to `out`; AMQP_STATUS_OK, or a negative amqp status (nothing appended).
int append_method_frame(OutBuffer& out, std::size_t frame_max, amqp_channel_t channel, amqp_method_number_t id,
                        void* method);

/// Appends a heartbeat frame to `out`.
void append_heartbeat_frame(OutBuffer& out);

/// Appends one message as the broker expects it: the basic.publish method frame, the content
/// header frame and as many body frames as `body` needs, none larger than `frame_max`.
/// AMQP_STATUS_OK, or a negative amqp status when the method or the properties do not fit a
/// frame; then nothing is appended and the stream stays whole.
int append_publish(OutBuffer& out, std::size_t frame_max, amqp_channel_t channel, amqp_basic_publish_t* method,
                   amqp_basic_properties_t* props, std::string_view body);

/// @brief Encodes events the way the confirm publisher sends them: mandatory (an unroutable one
/// comes back as basic.return), persistent (delivery mode 2), with the event's id as message_id,
/// its content type, its time in seconds, app_id "pix-pubsub" and its headers as UTF-8 strings.
class PublishEncoder {
 public:
  explicit PublishEncoder(std::string exchange) : exchange_(std::move(exchange)) {}

  /// append_publish() of `event` to the exchange, with `event.topic` as the routing key.
  int append(OutBuffer& out, std::size_t frame_max, amqp_channel_t channel, const broker::OutboundEvent& event);

 private:
  std::string exchange_;
  std::vector<amqp_table_entry_t> header_entries_;  ///< reused, so that a publish allocates nothing
};

}  // namespace pix::amqp::detail
