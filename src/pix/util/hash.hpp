#pragma once
/// @file A stable 64-bit hash (FNV-1a): fixed by its definition, unlike std::hash, so values made
/// from it (derived ids, fingerprints) are the same in every build and every process.

#include <cstdint>
#include <string_view>

namespace pix::util {

inline constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;

/// FNV-1a of `s`, continuing from `h` (chain calls to hash several parts).
constexpr std::uint64_t fnv1a64(std::string_view s, std::uint64_t h = kFnvOffset) noexcept {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace pix::util
