#pragma once
/// @file The endToEndId that names a PIX payment from payer to receiver:
/// `E` + ISPB + yyyyMMddHHmm (UTC) + 11 alphanumerics, 32 characters.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace pix::domain {

inline constexpr std::size_t kEndToEndIdLength = 32;

/// ISPB of this project's demo PSP. Fictitious: no institution is registered under it with the
/// BCB, so ids made with it can never be mistaken for real ones.
inline constexpr std::string_view kDemoIspb = "99999999";

/// @brief An ISPB as API Pix 2.9.0 has it: 8 characters [0-9A-Z].
bool is_valid_ispb(std::string_view ispb) noexcept;

/// @brief Makes the endToEndId of a payment initiated by `ispb` at `when`.
///
/// The 11 trailing characters come from a stable hash of `seed` (FNV-1a, the same on every
/// platform and every run), so the same event, redelivered, gets the same id; distinct seeds
/// collide with negligible probability (64 bits spread over 11 base-62 characters).
/// @throws std::invalid_argument if `ispb` is not valid: a configuration mistake, meant to surface
/// at start-up (check with is_valid_ispb() first).
std::string make_end_to_end_id(std::string_view ispb, std::chrono::system_clock::time_point when,
                               std::string_view seed);

/// @brief The strict form: `^E[0-9A-Z]{8}[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])
/// ([01][0-9]|2[0-3])[0-5][0-9][a-zA-Z0-9]{11}$`. Like the BCB pattern it does not know month
/// lengths (a 31 February passes).
bool is_valid_end_to_end_id(std::string_view id) noexcept;

}  // namespace pix::domain
