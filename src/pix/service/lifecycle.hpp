#pragma once

// One lifecycle for every service: a stop source that says "finish up", a gate that counts the
// work in flight and wakes whoever waits for it to reach zero, and the one place where SIGTERM /
// SIGINT (and SIGHUP, for those that reload) are turned into calls. No polling, no sleeps: every
// wait here is a condition variable, woken by the event it waits for or by its deadline.
//
// Threads: every member may be called from any thread. Callbacks registered with on_stop() and
// WorkGate::on_idle() run on the thread that causes the event (request_stop(), the last leave(),
// or close() at zero), never under a lock of this file; they should post their work elsewhere
// (an io_context) rather than do it inline.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pix::service {

using Clock = std::chrono::steady_clock;

/// @brief A one-shot "stop now" flag with a reason, that sleepers can wait on.
class StopSource {
 public:
  /// Asks for the stop; the first caller's reason is kept. True for the call that stopped it.
  bool request_stop(std::string reason);
  [[nodiscard]] bool stop_requested() const noexcept;
  /// Why the stop was asked ("signal SIGTERM", ...); empty before.
  [[nodiscard]] std::string reason() const;
  /// Sleeps until the stop is asked or `timeout` passes. True if stopped.
  bool wait_for(std::chrono::milliseconds timeout) const;
  /// Runs `callback` once when the stop is asked (at once, here, if it already was).
  void on_stop(std::function<void()> callback);

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool stopped_ = false;
  std::string reason_;
  std::vector<std::function<void()>> callbacks_;
};

/// @brief Counts work in flight; once closed, refuses new work and wakes its waiters at zero.
class WorkGate {
 public:
  /// Admits one unit of work; false once the gate is closed (the caller refuses the work).
  [[nodiscard]] bool enter();
  /// One unit of work is done. At zero on a closed gate, waiters wake and on_idle callbacks run.
  void leave();
  /// Refuses new work from now on. True for the call that closed it; later calls do nothing.
  bool close();
  [[nodiscard]] bool closed() const;
  [[nodiscard]] std::size_t in_flight() const;
  /// Waits until the work in flight reaches zero or `deadline` passes; the work still in flight.
  std::size_t wait_idle(Clock::time_point deadline) const;
  /// Runs `callback` once when the gate is closed and nothing is in flight (at once if so now).
  void on_idle(std::function<void()> callback);

  /// RAII unit of work: leaves on destruction. `admitted()` is false if the gate was closed.
  class Ticket {
   public:
    explicit Ticket(WorkGate& gate) : gate_(gate.enter() ? &gate : nullptr) {}
    // leave() throws only when unmatched, and a Ticket leaves only what it entered.
    // NOLINTNEXTLINE(bugprone-exception-escape)
    ~Ticket() {
      if (gate_ != nullptr) gate_->leave();
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    [[nodiscard]] bool admitted() const noexcept { return gate_ != nullptr; }

   private:
    WorkGate* gate_;
  };

 private:
  std::vector<std::function<void()>> take_idle_callbacks_locked();

  mutable std::mutex mutex_;
  mutable std::condition_variable idle_;
  std::size_t in_flight_ = 0;
  bool closed_ = false;
  std::vector<std::function<void()>> idle_callbacks_;
};

/// @brief Turns termination signals into `stop.request_stop("signal SIGTERM")`, and other
/// signals into callbacks, on a thread of its own that waits for them with sigwait().
///
/// Construct it first in main(), before any other thread starts (librdkafka's, Asio's): the
/// signals are blocked in the constructing thread, every thread created afterwards inherits the
/// mask, so they reach only the watcher's thread and no handler ever runs inside a C library.
/// A second SIGTERM/SIGINT while stopping is logged and otherwise ignored (the drain deadline
/// bounds the stop); the destructor restores the mask.
class SignalWatcher {
 public:
  explicit SignalWatcher(StopSource& stop, std::map<int, std::function<void()>> other = {});
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  void run();

  StopSource& stop_;
  std::map<int, std::function<void()>> other_;
  sigset_t watched_{};
  sigset_t previous_{};
  std::atomic<bool> quitting_{false};
  std::thread thread_;
};

}  // namespace pix::service
