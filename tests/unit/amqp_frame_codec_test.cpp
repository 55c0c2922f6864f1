// The frames the confirm publisher writes, byte for byte against AMQP 0-9-1 (spec 4.2.3 framing,
// 4.2.6 content, class basic): a wrong octet here is a broker closing the connection (501
// FRAME_ERROR) or, worse, a message stored with the wrong properties.
#include "pix/amqp/frame_codec.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "amqp_wire.hpp"

namespace pix::amqp::detail {
namespace {

namespace wire = pix::test::wire;
using wire::be16;
using wire::be32;
using wire::be64;
using wire::frame;
using wire::longstr;
using wire::shortstr;

constexpr std::uint16_t kBasicClass = 60;
constexpr std::uint16_t kBasicPublish = 40;

std::string unsent(const OutBuffer& out) {
  return {reinterpret_cast<const char*>(out.unsent()), out.unsent_size()};
}

std::string bytes(const std::uint8_t* p, int n) {
  return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
}

amqp_basic_publish_t publish_to(const char* exchange, const char* routing_key) {
  amqp_basic_publish_t m{};
  m.exchange = amqp_cstring_bytes(exchange);
  m.routing_key = amqp_cstring_bytes(routing_key);
  m.mandatory = 1;
  return m;
}

/// basic.publish arguments: reserved-1 (short), exchange, routing-key, then mandatory as bit 0.
std::string publish_args(const std::string& exchange, const std::string& routing_key) {
  return be16(kBasicClass) + be16(kBasicPublish) + be16(0) + shortstr(exchange) + shortstr(routing_key) + '\x01';
}

TEST(AmqpFrameCodec, MethodFrameIsTypeChannelSizeClassMethodArgumentsAndFrameEnd) {
  amqp_basic_publish_t m = publish_to("pix", "pix.payment.requested");
  std::array<std::uint8_t, 256> buf{};
  const int n = encode_method_frame(buf.data(), buf.size(), 1, AMQP_BASIC_PUBLISH_METHOD, &m);
  ASSERT_GT(n, 0);
  const std::string expected = frame(wire::kMethod, 1, publish_args("pix", "pix.payment.requested"));
  EXPECT_EQ(bytes(buf.data(), n), expected);
  EXPECT_EQ(buf[static_cast<std::size_t>(n) - 1], 0xCE);
  EXPECT_EQ(frame_size(buf.data()), static_cast<std::size_t>(n));
}

TEST(AmqpFrameCodec, ContentHeaderCarriesClassWeightBodySizeAndPropertyFlags) {
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  props.message_id = amqp_cstring_bytes("evt-1");
  std::array<std::uint8_t, 256> buf{};
  const int n = encode_header_frame(buf.data(), buf.size(), 3, 1234, &props);
  ASSERT_GT(n, 0);
  // Flag bits 12 (delivery-mode) and 7 (message-id); the properties follow in flag order.
  const std::string payload = be16(kBasicClass) + be16(0) + be64(1234) + be16(0x1080) + '\x02' + shortstr("evt-1");
  EXPECT_EQ(bytes(buf.data(), n), frame(wire::kHeader, 3, payload));
}

TEST(AmqpFrameCodec, HeartbeatIsAnEmptyFrameOfTypeEightOnChannelZero) {
  OutBuffer out;
  append_heartbeat_frame(out);
  EXPECT_EQ(unsent(out), std::string("\x08\x00\x00\x00\x00\x00\x00\xCE", 8));
}

TEST(AmqpFrameCodec, EventsGoOutMandatoryPersistentWithTheirIdTimeAppIdAndHeaders) {
  broker::OutboundEvent ev;
  ev.topic = "pix.payment.requested";
  ev.id = "evt-1";
  ev.payload = R"({"amount":"10.00"})";
  ev.timestamp_ms = 1'700'000'000'999;
  ev.headers.push_back({"ce_type", "pix.payment.requested"});
  PublishEncoder encoder("pix");
  OutBuffer out;
  ASSERT_EQ(encoder.append(out, 131072, 1, ev), AMQP_STATUS_OK);

  // content-type(15) headers(13) delivery-mode(12) message-id(7) timestamp(6) app-id(3).
  const std::string properties = be16(0xB0C8) + shortstr("application/json") +
                                 longstr(shortstr("ce_type") + 'S' + longstr("pix.payment.requested")) + '\x02' +
                                 shortstr("evt-1") + be64(1'700'000'000) + shortstr("pix-pubsub");
  const std::string expected =
      frame(wire::kMethod, 1, publish_args("pix", "pix.payment.requested")) +
      frame(wire::kHeader, 1, be16(kBasicClass) + be16(0) + be64(ev.payload.size()) + properties) +
      frame(wire::kBody, 1, ev.payload);
  EXPECT_EQ(unsent(out), expected);
}

class AmqpFrameCodecBody : public ::testing::Test {
 protected:
  static constexpr std::size_t kFrameMax = 64;  // a body frame carries at most 56 bytes

  /// The frames append_publish() writes after the method and the content header.
  std::string body_frames(const std::string& body) {
    amqp_basic_publish_t m = publish_to("pix", "pix.x");
    amqp_basic_properties_t props{};
    OutBuffer out;
    EXPECT_EQ(append_publish(out, kFrameMax, 1, &m, &props, body), AMQP_STATUS_OK);
    const std::string all = unsent(out);
    const std::string method = frame(wire::kMethod, 1, publish_args("pix", "pix.x"));
    const std::string header = frame(wire::kHeader, 1, be16(kBasicClass) + be16(0) + be64(body.size()) + be16(0));
    EXPECT_EQ(all.substr(0, method.size() + header.size()), method + header);
    return all.substr(method.size() + header.size());
  }
};

TEST_F(AmqpFrameCodecBody, IsSplitIntoFramesNoLargerThanFrameMax) {
  const std::string body(130, 'x');
  EXPECT_EQ(body_frames(body), frame(wire::kBody, 1, body.substr(0, 56)) + frame(wire::kBody, 1, body.substr(56, 56)) +
                                   frame(wire::kBody, 1, body.substr(112)));
}

TEST_F(AmqpFrameCodecBody, FillingTheLastFrameExactlyAddsNoEmptyFrame) {
  const std::string body(112, 'y');
  EXPECT_EQ(body_frames(body), frame(wire::kBody, 1, body.substr(0, 56)) + frame(wire::kBody, 1, body.substr(56)));
}

TEST_F(AmqpFrameCodecBody, AnEmptyBodyHasNoBodyFrame) {
  EXPECT_EQ(body_frames(""), "");
}

TEST(AmqpFrameCodec, TooLittleRoomIsAnErrorNotATruncatedFrame) {
  amqp_basic_publish_t m = publish_to("pix", "pix.payment.requested");
  std::array<std::uint8_t, 256> buf{};
  // Not even the envelope and the method id fit.
  EXPECT_EQ(encode_method_frame(buf.data(), 11, 1, AMQP_BASIC_PUBLISH_METHOD, &m), AMQP_STATUS_NO_MEMORY);
  // The envelope fits, the arguments do not.
  EXPECT_LT(encode_method_frame(buf.data(), 24, 1, AMQP_BASIC_PUBLISH_METHOD, &m), 0);
  amqp_basic_properties_t props{};
  EXPECT_EQ(encode_header_frame(buf.data(), 19, 1, 0, &props), AMQP_STATUS_NO_MEMORY);
}

TEST(AmqpFrameCodec, AMessageThatDoesNotFitAFrameAppendsNothing) {
  OutBuffer out;
  std::memcpy(out.tail(3), "abc", 3);
  out.commit(3);
  const std::string long_key(100, 'k');
  amqp_basic_publish_t m = publish_to("pix", long_key.c_str());
  amqp_basic_properties_t props{};
  EXPECT_LT(append_publish(out, 64, 1, &m, &props, "body"), 0);
  EXPECT_EQ(unsent(out), "abc");

  // The method fits, the properties do not.
  m = publish_to("pix", "pix.x");
  const std::string long_id(100, 'i');
  props._flags = AMQP_BASIC_MESSAGE_ID_FLAG;
  props.message_id = amqp_cstring_bytes(long_id.c_str());
  EXPECT_LT(append_publish(out, 64, 1, &m, &props, "body"), 0);
  EXPECT_EQ(unsent(out), "abc");

  m = publish_to("pix", long_key.c_str());
  EXPECT_LT(append_method_frame(out, 64, 1, AMQP_BASIC_PUBLISH_METHOD, &m), 0);
  EXPECT_EQ(unsent(out), "abc");
}

TEST(AmqpOutBuffer, ConsumingEverythingStartsOverInTheSameMemory) {
  OutBuffer out;
  std::uint8_t* first = out.tail(100);
  std::memset(first, 'a', 100);
  out.commit(100);
  out.consume(40);
  EXPECT_EQ(out.unsent(), first + 40);
  EXPECT_EQ(out.unsent_size(), 60U);
  out.consume(60);
  EXPECT_EQ(out.unsent_size(), 0U);
  EXPECT_EQ(out.tail(100), first) << "a drained buffer must reuse its memory";
}

TEST(AmqpOutBuffer, GrowingKeepsTheUnsentBytesInOrder) {
  OutBuffer out;
  std::uint8_t* first = out.tail(60'000);
  for (std::size_t i = 0; i < 60'000; ++i) first[i] = static_cast<std::uint8_t>(i % 251);
  out.commit(60'000);
  out.consume(50'000);
  // Moving the unsent bytes to the front makes room without allocating.
  std::uint8_t* tail = out.tail(20'000);
  EXPECT_EQ(out.unsent(), first);
  EXPECT_EQ(tail, first + 10'000);
  for (std::size_t i = 0; i < 10'000; ++i) ASSERT_EQ(out.unsent()[i], (50'000 + i) % 251) << "byte " << i;

  // Beyond the capacity it reallocates, still keeping them.
  out.tail(1'000'000);
  ASSERT_EQ(out.unsent_size(), 10'000U);
  for (std::size_t i = 0; i < 10'000; ++i) ASSERT_EQ(out.unsent()[i], (50'000 + i) % 251) << "byte " << i;
}

TEST(AmqpOutBuffer, ClearDropsWhatWasNotSent) {
  OutBuffer out;
  std::memset(out.tail(10), 'z', 10);
  out.commit(10);
  out.clear();
  EXPECT_EQ(out.unsent_size(), 0U);
  std::memcpy(out.tail(2), "ok", 2);
  out.commit(2);
  EXPECT_EQ(unsent(out), "ok");
}

}  // namespace
}  // namespace pix::amqp::detail
