#pragma once
/// @file SHA-256 as lowercase hex: the one digest the audit chain, payment fingerprints and
/// derived ids are made of.

#include <string>
#include <string_view>

namespace pix::util {

/// Lowercase hex of SHA-256(`data`): 64 characters. Throws std::runtime_error if OpenSSL fails.
std::string sha256_hex(std::string_view data);

}  // namespace pix::util
