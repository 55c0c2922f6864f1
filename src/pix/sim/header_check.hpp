#pragma once
/// @file The one rule for headers the engine sends, whether they come from a command line
/// (parse_header_line) or from LoadOptions::headers (run_load's checks). Internal to sim.

#include <string>
#include <string_view>

namespace pix::sim::detail {

/// Why a header cannot be sent as it is (a name that is not an RFC 9110 token, a CR, LF or NUL in
/// the value); empty when it can.
std::string header_problem(std::string_view name, std::string_view value);

}  // namespace pix::sim::detail
