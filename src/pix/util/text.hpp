#pragma once
/// @file Small text helpers shared by the parsers of headers, URLs and environment variables.

#include <optional>
#include <string>
#include <string_view>

namespace pix::util {

/// `s` without leading and trailing blanks (spaces and tabs).
std::string_view trim_blanks(std::string_view s) noexcept;

/// What an errno value means (strerror's text), safe from any thread.
std::string errno_text(int err);

/// `%XX` escapes decoded (RFC 3986); nothing for a truncated or non-hex escape.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace pix::util
