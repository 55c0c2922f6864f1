#pragma once
/// @file base64url (RFC 4648 §5) without padding, the encoding of every JWS segment (RFC 7515 §2).

#include <optional>
#include <string>
#include <string_view>

namespace pix::security {

/// @brief Encodes `bytes` as base64url with no `=` padding.
std::string base64url_encode(std::string_view bytes);

/// @brief Decodes unpadded base64url strictly; nullopt for anything else.
///
/// Refused: any character outside `A-Z a-z 0-9 - _` (so `=`, `+`, `/`, whitespace and NUL too), a
/// length of 4k+1 (no byte string encodes to it), and a last character whose unused low bits are
/// not zero. The last rule makes the encoding canonical: two different strings never decode to the
/// same bytes, so changing any character of a signed token changes what is verified.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace pix::security
