#include "pix/domain/end_to_end_id.hpp"

#include "pix/util/hash.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace pix::domain {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::size_t kRandomPartLength = 11;

constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
constexpr bool is_upper_alnum(char c) noexcept {
  return is_digit(c) || (c >= 'A' && c <= 'Z');
}
constexpr bool is_alnum(char c) noexcept {
  return is_upper_alnum(c) || (c >= 'a' && c <= 'z');
}

// SplitMix64's finalizer: FNV-1a's low bits mix poorly for short inputs, and each character
// below is taken from a fresh, well-mixed word.
std::uint64_t mix(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void append_digits(std::string& out, unsigned value, int width) {
  char buf[4];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buf, static_cast<std::size_t>(width));
}

int two_digits(std::string_view s) noexcept {
  return (s[0] - '0') * 10 + (s[1] - '0');
}

}  // namespace

bool is_valid_ispb(std::string_view ispb) noexcept {
  return ispb.size() == 8 && std::all_of(ispb.begin(), ispb.end(), is_upper_alnum);
}

std::string make_end_to_end_id(std::string_view ispb, std::chrono::system_clock::time_point when,
                               std::string_view seed) {
  if (!is_valid_ispb(ispb)) throw std::invalid_argument("ISPB must be 8 characters [0-9A-Z]");
  using namespace std::chrono;
  const auto minute = floor<minutes>(when);
  const auto day = floor<days>(minute);
  const year_month_day ymd{day};
  const hh_mm_ss hms{minute - day};

  std::string id;
  id.reserve(kEndToEndIdLength);
  id += 'E';
  id += ispb;
  // system_clock's range (1677-2262 with nanosecond ticks) keeps the year at 4 digits.
  append_digits(id, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  append_digits(id, static_cast<unsigned>(ymd.month()), 2);
  append_digits(id, static_cast<unsigned>(ymd.day()), 2);
  append_digits(id, static_cast<unsigned>(hms.hours().count()), 2);
  append_digits(id, static_cast<unsigned>(hms.minutes().count()), 2);

  std::uint64_t state = util::fnv1a64(seed);
  for (std::size_t i = 0; i < kRandomPartLength; ++i) {
    state += 0x9e3779b97f4a7c15ULL;  // SplitMix64's increment
    id += kAlphabet[mix(state) % kAlphabet.size()];
  }
  return id;
}

bool is_valid_end_to_end_id(std::string_view id) noexcept {
  if (id.size() != kEndToEndIdLength || id[0] != 'E') return false;
  const std::string_view ispb = id.substr(1, 8);
  const std::string_view stamp = id.substr(9, 12);  // yyyyMMddHHmm
  const std::string_view tail = id.substr(21);
  if (!is_valid_ispb(ispb) || !std::all_of(stamp.begin(), stamp.end(), is_digit) ||
      !std::all_of(tail.begin(), tail.end(), is_alnum)) {
    return false;
  }
  const int month = two_digits(stamp.substr(4));
  const int day = two_digits(stamp.substr(6));
  const int hour = two_digits(stamp.substr(8));
  const int minute = two_digits(stamp.substr(10));
  return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59;
}

}  // namespace pix::domain
