#include "pix/util/random_id.hpp"

#include <random>

namespace pix::util {
namespace {

// splitmix64-seeded xoshiro256**: fast, per thread, no locks.
struct Xoshiro {
  std::uint64_t s[4]{};
  Xoshiro() {
    std::random_device rd;
    std::uint64_t x = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    for (auto& v : s) {
      x += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      v = z ^ (z >> 31);
    }
  }
  static std::uint64_t rotl(std::uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::uint64_t random_u64() noexcept {
  thread_local Xoshiro gen;
  return gen.next();
}

std::string random_hex(std::size_t n_bytes) {
  std::string out(n_bytes * 2, '0');
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < n_bytes; ++i) {
    if (i % 8 == 0) bits = random_u64();
    const auto byte = static_cast<unsigned>(bits & 0xff);
    bits >>= 8;
    out[2 * i] = kHex[byte >> 4];
    out[2 * i + 1] = kHex[byte & 0xf];
  }
  return out;
}

std::string uuid_v4() {
  std::string h = random_hex(16);
  h[12] = '4';                                           // version
  h[16] = kHex[8 + (static_cast<unsigned>(h[16]) & 3)];  // variant 10xx
  return h.substr(0, 8) + '-' + h.substr(8, 4) + '-' + h.substr(12, 4) + '-' + h.substr(16, 4) + '-' + h.substr(20);
}

}  // namespace pix::util
