#include "pix/sim/load_progress.hpp"

namespace pix::sim::detail {

ProgressLine::ProgressLine(std::FILE* out, bool tty, Clock::time_point start)
    : out_(out), tty_(tty), start_(start), last_(start) {}

void ProgressLine::print(Clock::time_point now, const ProgressSnapshot& totals) {
  const double window = std::chrono::duration<double>(now - last_).count();
  const double rate = window > 0 ? static_cast<double>(totals.completed - last_completed_) / window : 0.0;
  last_completed_ = totals.completed;
  last_ = now;
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - start_).count();
  std::fprintf(out_, "%s[%4llds] sent %llu  ok %llu  err %llu  rate %.0f/s  p99 %s%s", tty_ ? "\r" : "",
               static_cast<long long>(secs), static_cast<unsigned long long>(totals.sent),
               static_cast<unsigned long long>(totals.ok), static_cast<unsigned long long>(totals.failed), rate,
               short_latency(totals.latency_all.value_at_percentile(99)).c_str(), tty_ ? "\033[K" : "\n");
  std::fflush(out_);
  printed_ = true;
}

void ProgressLine::finish() {
  if (printed_ && tty_) std::fputc('\n', out_);
}

std::string short_latency(std::chrono::nanoseconds d) {
  const double us = static_cast<double>(d.count()) / 1e3;
  char buf[32];
  if (us < 1000) {
    std::snprintf(buf, sizeof buf, "%.0fus", us);
  } else if (us < 1e6) {
    std::snprintf(buf, sizeof buf, "%.1fms", us / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fs", us / 1e6);
  }
  return buf;
}

}  // namespace pix::sim::detail
