#include "pix/amqp/frame_codec.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "pix/amqp/connection.hpp"

namespace pix::amqp::detail {
namespace {

constexpr char kAppId[] = "pix-pubsub";

std::uint32_t get_u32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24U) | (std::uint32_t{p[1]} << 16U) | (std::uint32_t{p[2]} << 8U) |
         std::uint32_t{p[3]};
}

void put_u16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8U);
  p[1] = static_cast<std::uint8_t>(v);
}
void put_u32(std::uint8_t* p, std::uint32_t v) noexcept {
  put_u16(p, static_cast<std::uint16_t>(v >> 16U));
  put_u16(p + 2, static_cast<std::uint16_t>(v));
}
void put_u64(std::uint8_t* p, std::uint64_t v) noexcept {
  put_u32(p, static_cast<std::uint32_t>(v >> 32U));
  put_u32(p + 4, static_cast<std::uint32_t>(v));
}

void put_frame_header(std::uint8_t* p, std::uint8_t type, amqp_channel_t channel, std::size_t payload) noexcept {
  p[0] = type;
  put_u16(p + 1, channel);
  put_u32(p + 3, static_cast<std::uint32_t>(payload));
}

/// Encodes at `p` (at most `room` bytes) a frame whose payload is `fixed_size` bytes written by
/// `put_fixed`, then what `encode_rest` writes into the room left (its length, or a negative amqp
/// status); the frame's length, or a negative amqp status.
template <typename PutFixed, typename EncodeRest>
int encode_frame(std::uint8_t* p, std::size_t room, std::uint8_t type, amqp_channel_t channel, std::size_t fixed_size,
                 PutFixed put_fixed, EncodeRest encode_rest) noexcept {
  if (room < kFrameOverhead + fixed_size) return AMQP_STATUS_NO_MEMORY;
  amqp_bytes_t rest;
  rest.bytes = p + kFrameHeaderSize + fixed_size;
  rest.len = room - kFrameOverhead - fixed_size;
  const int n = encode_rest(rest);
  if (n < 0) return n;
  const std::size_t payload = fixed_size + static_cast<std::size_t>(n);
  put_frame_header(p, type, channel, payload);
  put_fixed(p + kFrameHeaderSize);
  p[kFrameHeaderSize + payload] = kFrameEnd;
  return static_cast<int>(kFrameOverhead + payload);
}

/// Encodes `body` at `p` as body frames of at most `max_chunk` payload bytes; the end.
std::uint8_t* encode_body_frames(std::uint8_t* p, amqp_channel_t channel, std::string_view body,
                                 std::size_t max_chunk) noexcept {
  for (std::size_t offset = 0; offset < body.size();) {
    const std::size_t chunk = std::min(max_chunk, body.size() - offset);
    put_frame_header(p, AMQP_FRAME_BODY, channel, chunk);
    std::memcpy(p + kFrameHeaderSize, body.data() + offset, chunk);
    p[kFrameHeaderSize + chunk] = kFrameEnd;
    p += chunk + kFrameOverhead;
    offset += chunk;
  }
  return p;
}

}  // namespace

std::size_t frame_size(const std::uint8_t* header) noexcept {
  return std::size_t{get_u32(header + 3)} + kFrameOverhead;
}

int encode_method_frame(std::uint8_t* p, std::size_t room, amqp_channel_t channel, amqp_method_number_t id,
                        void* method) noexcept {
  constexpr std::size_t kIdSize = 4;  // class id, method id
  return encode_frame(
      p, room, AMQP_FRAME_METHOD, channel, kIdSize, [&](std::uint8_t* fixed) { put_u32(fixed, id); },
      [&](amqp_bytes_t args) { return amqp_encode_method(id, method, args); });
}

int encode_header_frame(std::uint8_t* p, std::size_t room, amqp_channel_t channel, std::uint64_t body_size,
                        amqp_basic_properties_t* props) noexcept {
  constexpr std::size_t kFixed = 12;  // class id, weight, body size
  return encode_frame(
      p, room, AMQP_FRAME_HEADER, channel, kFixed,
      [&](std::uint8_t* fixed) {
        put_u16(fixed, AMQP_BASIC_CLASS);
        put_u16(fixed + 2, 0);
        put_u64(fixed + 4, body_size);
      },
      [&](amqp_bytes_t properties) { return amqp_encode_properties(AMQP_BASIC_CLASS, props, properties); });
}

void OutBuffer::grow(std::size_t n) {
  if (sent_ > 0) {
    std::memmove(data_.get(), data_.get() + sent_, size_ - sent_);
    size_ -= sent_;
    sent_ = 0;
    if (capacity_ - size_ >= n) return;
  }
  const std::size_t capacity = std::max({capacity_ * 2, size_ + n, std::size_t{64} * 1024});
  std::unique_ptr<std::uint8_t[]> bigger(new std::uint8_t[capacity]);
  if (size_ > 0) std::memcpy(bigger.get(), data_.get(), size_);
  data_ = std::move(bigger);
  capacity_ = capacity;
}

int append_method_frame(OutBuffer& out, std::size_t frame_max, amqp_channel_t channel, amqp_method_number_t id,
                        void* method) {
  const int n = encode_method_frame(out.tail(frame_max), frame_max, channel, id, method);
  if (n < 0) return n;
  out.commit(static_cast<std::size_t>(n));
  return AMQP_STATUS_OK;
}

void append_heartbeat_frame(OutBuffer& out) {
  std::uint8_t* p = out.tail(kFrameOverhead);
  put_frame_header(p, AMQP_FRAME_HEARTBEAT, 0, 0);
  p[kFrameHeaderSize] = kFrameEnd;
  out.commit(kFrameOverhead);
}

int append_publish(OutBuffer& out, std::size_t frame_max, amqp_channel_t channel, amqp_basic_publish_t* method,
                   amqp_basic_properties_t* props, std::string_view body) {
  const std::size_t max_chunk = frame_max - kFrameOverhead;
  const std::size_t body_frames = (body.size() + max_chunk - 1) / max_chunk;
  std::uint8_t* start = out.tail(2 * frame_max + body.size() + body_frames * kFrameOverhead);
  std::uint8_t* p = start;
  int n = encode_method_frame(p, frame_max, channel, AMQP_BASIC_PUBLISH_METHOD, method);
  if (n < 0) return n;
  p += n;
  n = encode_header_frame(p, frame_max, channel, body.size(), props);
  if (n < 0) return n;
  p += n;
  p = encode_body_frames(p, channel, body, max_chunk);
  out.commit(static_cast<std::size_t>(p - start));
  return AMQP_STATUS_OK;
}

int PublishEncoder::append(OutBuffer& out, std::size_t frame_max, amqp_channel_t channel,
                           const broker::OutboundEvent& event) {
  amqp_basic_publish_t method{};
  method.exchange = bytes_of(exchange_);
  method.routing_key = bytes_of(event.topic);
  method.mandatory = 1;
  method.immediate = 0;

  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                 AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
  props.content_type = bytes_of(event.content_type);
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  props.message_id = bytes_of(event.id);
  props.timestamp = static_cast<std::uint64_t>(std::max<std::int64_t>(event.timestamp_ms, 0) / 1000);
  props.app_id = amqp_cstring_bytes(kAppId);
  header_entries_.clear();
  for (const auto& h : event.headers) header_entries_.push_back(string_entry(h.name, h.value));
  props.headers.num_entries = static_cast<int>(header_entries_.size());
  props.headers.entries = header_entries_.data();

  return append_publish(out, frame_max, channel, &method, &props, event.payload);
}

}  // namespace pix::amqp::detail
