#include "pix/util/invariant.hpp"

#include <spdlog/spdlog.h>

namespace pix::util {
namespace {

std::atomic<std::uint64_t> violations{0};

// The path from the source tree's src/ down, rather than the build machine's absolute one.
std::string_view short_path(std::string_view file) noexcept {
  const auto at = file.rfind("/src/");
  return at == std::string_view::npos ? file : file.substr(at + 1);
}

}  // namespace

std::uint64_t invariant_violations() noexcept {
  return violations.load(std::memory_order_relaxed);
}

namespace detail {

void count_violation() noexcept {
  violations.fetch_add(1, std::memory_order_relaxed);
}

bool BugSite::record(std::chrono::steady_clock::time_point at) noexcept {
  count_violation();
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
  std::int64_t last = last_logged_ns_.load(std::memory_order_relaxed);
  const std::int64_t interval = std::chrono::nanoseconds(kLogInterval).count();
  // One thread wins the line; the others (and everything within the interval) are counted quiet.
  if ((last < 0 || now - last >= interval) &&
      last_logged_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void BugSite::log(std::string_view message) noexcept {
  // spdlog catches its own failures (its error handler), so this cannot throw.
  const std::uint64_t quiet = suppressed_.exchange(0, std::memory_order_relaxed);
  if (quiet > 0) {
    spdlog::error("invariant violated at {}:{} ({}): {} [{} more here since the last report]", short_path(file_), line_,
                  condition_, message, quiet);
  } else {
    spdlog::error("invariant violated at {}:{} ({}): {}", short_path(file_), line_, condition_, message);
  }
}

}  // namespace detail
}  // namespace pix::util
