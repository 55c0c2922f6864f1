#pragma once
/// @file PIX_BUG: an invariant that breaks in production is logged and counted, never ignored
/// and never fatal (Envoy's ENVOY_BUG). Every process exports the count as
/// pix_invariant_violations_total (telemetry::register_build_info).

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <string_view>
#include <utility>

namespace pix::util {

/// @brief Invariant violations since the process started: PIX_BUG conditions found false, and
/// exceptions stopped at a C library's callback (broker::guarded).
std::uint64_t invariant_violations() noexcept;

namespace detail {

/// @brief One PIX_BUG call site: counts every violation, logs at most one line a minute.
class BugSite {
 public:
  static constexpr std::chrono::seconds kLogInterval{60};

  constexpr BugSite(const char* file, int line, const char* condition) noexcept
      : file_(file), line_(line), condition_(condition) {}

  /// Counts a violation here; true when its log line is due (the first, then one a minute).
  bool record() noexcept { return record(std::chrono::steady_clock::now()); }
  /// record() as of `now` (for tests of the rate limit).
  bool record(std::chrono::steady_clock::time_point now) noexcept;
  /// Logs `message` at error level with this site's file:line, the condition and how many
  /// violations the rate limit kept quiet since the last line.
  void log(std::string_view message) noexcept;

 private:
  const char* file_;
  int line_;
  const char* condition_;
  std::atomic<std::int64_t> last_logged_ns_{-1};  ///< steady clock; -1: never logged
  std::atomic<std::uint64_t> suppressed_{0};
};

/// Adds one to the process-wide count, for violations found outside a PIX_BUG (broker::guarded).
void count_violation() noexcept;

template <class... Args>
void report_bug(BugSite& site, fmt::format_string<Args...> format, Args&&... args) noexcept {
  if (!site.record()) return;
  try {
    site.log(fmt::format(format, std::forward<Args>(args)...));
  } catch (const std::exception& e) {
    // The violation is counted already; its line still goes out, without the message.
    site.log(std::string_view{e.what()});
  }
}

}  // namespace detail
}  // namespace pix::util

/// @brief Checks an invariant that must hold but whose breaking is survivable: when `condition`
/// is false, counts the violation and logs the fmt-formatted message (error level, with
/// file:line), at most once a minute per call site. Never aborts, in any build type: these paths
/// are driven on purpose by tests (a fake broker acking a tag never sent, a callback that throws).
/// The arguments are evaluated only when the condition is false.
#define PIX_BUG(condition, ...)                                                          \
  do {                                                                                   \
    if (!(condition)) [[unlikely]] {                                                     \
      static ::pix::util::detail::BugSite pix_bug_site_{__FILE__, __LINE__, #condition}; \
      ::pix::util::detail::report_bug(pix_bug_site_, __VA_ARGS__);                       \
    }                                                                                    \
  } while (false)
