#include "pix/service/lifecycle.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <stdexcept>
#include <system_error>
#include <utility>

namespace pix::service {

namespace {

void run_all(std::vector<std::function<void()>>& callbacks) {
  for (auto& callback : callbacks) callback();
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal " + std::to_string(sig);
  }
}

}  // namespace

bool StopSource::request_stop(std::string reason) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return false;
    stopped_ = true;
    reason_ = std::move(reason);
    callbacks.swap(callbacks_);
  }
  changed_.notify_all();
  run_all(callbacks);
  return true;
}

bool StopSource::stop_requested() const noexcept {
  std::lock_guard lock(mutex_);
  return stopped_;
}

std::string StopSource::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

bool StopSource::wait_for(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return stopped_; });
}

void StopSource::on_stop(std::function<void()> callback) {
  {
    std::lock_guard lock(mutex_);
    if (!stopped_) {
      callbacks_.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

bool WorkGate::enter() {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  ++in_flight_;
  return true;
}

void WorkGate::leave() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mutex_);
    if (in_flight_ == 0) throw std::logic_error("WorkGate::leave without a matching enter");
    if (--in_flight_ != 0) return;
    callbacks = take_idle_callbacks_locked();
  }
  idle_.notify_all();
  run_all(callbacks);
}

bool WorkGate::close() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    closed_ = true;
    callbacks = take_idle_callbacks_locked();
  }
  idle_.notify_all();
  run_all(callbacks);
  return true;
}

bool WorkGate::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::size_t WorkGate::in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

std::size_t WorkGate::wait_idle(Clock::time_point deadline) const {
  std::unique_lock lock(mutex_);
  idle_.wait_until(lock, deadline, [&] { return in_flight_ == 0; });
  return in_flight_;
}

void WorkGate::on_idle(std::function<void()> callback) {
  {
    std::lock_guard lock(mutex_);
    if (!closed_ || in_flight_ != 0) {
      idle_callbacks_.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

std::vector<std::function<void()>> WorkGate::take_idle_callbacks_locked() {
  std::vector<std::function<void()>> callbacks;
  if (closed_ && in_flight_ == 0) callbacks.swap(idle_callbacks_);
  return callbacks;
}

SignalWatcher::SignalWatcher(StopSource& stop, std::map<int, std::function<void()>> other)
    : stop_(stop), other_(std::move(other)) {
  sigemptyset(&watched_);
  sigaddset(&watched_, SIGTERM);
  sigaddset(&watched_, SIGINT);
  for (const auto& [sig, callback] : other_) sigaddset(&watched_, sig);
  if (const int rc = pthread_sigmask(SIG_BLOCK, &watched_, &previous_); rc != 0) {
    throw std::runtime_error(std::string("cannot block the termination signals: ") +
                             std::system_category().message(rc));
  }
  thread_ = std::thread([this] { run(); });
}

SignalWatcher::~SignalWatcher() {
  quitting_ = true;
  // The watcher's thread is in sigwait() with SIGTERM blocked: this wakes exactly that thread.
  // SIGTERM is blocked and sigwait()ed there, so it ends nothing.
  // NOLINTNEXTLINE(bugprone-bad-signal-to-kill-thread)
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

void SignalWatcher::run() {
  for (;;) {
    int sig = 0;
    if (sigwait(&watched_, &sig) != 0) continue;
    if (quitting_) return;
    if (sig == SIGTERM || sig == SIGINT) {
      if (!stop_.request_stop("signal " + signal_name(sig))) {
        spdlog::warn("{} while already stopping ({}): the drain deadline bounds the stop", signal_name(sig),
                     stop_.reason());
      }
      continue;
    }
    if (auto it = other_.find(sig); it != other_.end()) {
      try {
        it->second();
      } catch (const std::exception& e) {
        spdlog::error("{}: handling it failed: {}", signal_name(sig), e.what());
      }
    }
  }
}

}  // namespace pix::service
