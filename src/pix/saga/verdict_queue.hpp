#pragma once
/// @file Publisher verdicts handed from the broker threads to the one thread that acts on them.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace pix::saga {

/// @brief A queue of verdicts (publish results) that its consumer thread sleeps on.
///
/// Owned through a std::shared_ptr by the consumer and by every publish callback it gives out:
/// a verdict that arrives after its consumer is gone (a publisher drained, or destroyed, after
/// the stage) lands here and is dropped with the last callback, never in freed memory.
template <typename T>
class VerdictQueue {
 public:
  using Clock = std::chrono::steady_clock;

  static std::shared_ptr<VerdictQueue> make() { return std::make_shared<VerdictQueue>(); }

  /// From any thread (a broker's); wakes the waiter.
  void push(T verdict) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(verdict));
    }
    ready_.notify_one();
  }

  /// Wakes the waiter once without a verdict (the stop was asked: it has something to look at).
  /// A wake() before the wait is kept: the next take() returns at once.
  void wake() {
    {
      std::lock_guard lock(mutex_);
      woken_ = true;
    }
    ready_.notify_one();
  }

  /// Everything pushed so far, waiting until there is something, a wake(), or `deadline`.
  std::vector<T> take(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    ready_.wait_until(lock, deadline, [&] { return woken_ || !items_.empty(); });
    woken_ = false;
    std::vector<T> out;
    out.swap(items_);
    return out;
  }

  /// Everything pushed so far, without waiting.
  std::vector<T> take_now() {
    std::lock_guard lock(mutex_);
    std::vector<T> out;
    out.swap(items_);
    return out;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<T> items_;
  bool woken_ = false;
};

}  // namespace pix::saga
