#pragma once
/// @file AMQP 0-9-1 wire bytes spelled out by hand from the spec (section 4.2), independently of
/// rabbitmq-c and of our codec: for tests that check what the publisher writes, or play a broker.

#include <cstdint>
#include <string>

namespace pix::test::wire {

inline std::string be16(std::uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}
inline std::string be32(std::uint32_t v) {
  return be16(static_cast<std::uint16_t>(v >> 16)) + be16(static_cast<std::uint16_t>(v & 0xffff));
}
inline std::string be64(std::uint64_t v) {
  return be32(static_cast<std::uint32_t>(v >> 32)) + be32(static_cast<std::uint32_t>(v & 0xffffffff));
}
/// short-string: one length octet, then the bytes.
inline std::string shortstr(const std::string& s) {
  return std::string(1, static_cast<char>(s.size())) + s;
}
/// long-string: a 32-bit length, then the bytes.
inline std::string longstr(const std::string& s) {
  return be32(static_cast<std::uint32_t>(s.size())) + s;
}

constexpr std::uint8_t kMethod = 1;
constexpr std::uint8_t kHeader = 2;
constexpr std::uint8_t kBody = 3;
constexpr std::uint8_t kHeartbeat = 8;

/// type(1) channel(2) size(4) payload frame-end(0xCE).
inline std::string frame(std::uint8_t type, std::uint16_t channel, const std::string& payload) {
  return std::string(1, static_cast<char>(type)) + be16(channel) + be32(static_cast<std::uint32_t>(payload.size())) +
         payload + '\xCE';
}
inline std::string method_frame(std::uint16_t channel, std::uint16_t cls, std::uint16_t method,
                                const std::string& args) {
  return frame(kMethod, channel, be16(cls) + be16(method) + args);
}

}  // namespace pix::test::wire
