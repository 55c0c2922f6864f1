#pragma once
/// @file The one wrapper for code a C library calls back into (librdkafka's callbacks, the AMQP
/// publisher's thread answering user callbacks): no exception may unwind through C frames.

#include <exception>
#include <type_traits>
#include <utility>

namespace pix::broker {

namespace detail {
/// Logs (critical, naming `where` and `what`) and counts an exception stopped by guarded(), as an
/// invariant violation: callbacks must not throw (PublishCallback, ProbeCallback say so).
void report_callback_exception(const char* where, const char* what) noexcept;
}  // namespace detail

/// @brief Calls `f()`; an exception it throws is logged and counted, never rethrown. Returns
/// true when `f` returned normally. `where` names the callback, e.g. "kafka delivery report".
template <class F>
bool guarded(const char* where, F&& f) noexcept {
  static_assert(std::is_invocable_v<F&>, "guarded() calls f with no arguments");
  try {
    std::forward<F>(f)();
    return true;
  } catch (const std::exception& e) {
    detail::report_callback_exception(where, e.what());
  } catch (...) {
    detail::report_callback_exception(where, "an exception not derived from std::exception");
  }
  return false;
}

}  // namespace pix::broker
