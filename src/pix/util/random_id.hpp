#pragma once
/// @file Fast random identifiers (event ids, trace ids). Not for secrets.

#include <cstdint>
#include <string>

namespace pix::util {

/// A random 64-bit value from a per-thread generator seeded from std::random_device.
std::uint64_t random_u64() noexcept;

/// `n` random bytes as 2n lowercase hex characters.
std::string random_hex(std::size_t n_bytes);

/// A random (version 4) UUID in its canonical lowercase text form.
std::string uuid_v4();

}  // namespace pix::util
