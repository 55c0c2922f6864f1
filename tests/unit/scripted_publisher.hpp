#pragma once
/// @file A broker::Publisher whose verdicts a test scripts: ack, reject, unavailable, delay, never.
///
/// The seam the gateway's Server and the saga's KafkaStage are unit-tested through. Like the real
/// publishers, it answers publishes and probes on a thread of its own (never inside publish() or
/// probe()), exactly once per event. `on_publish` is a gmock method, so a test may also
/// EXPECT_CALL on what was handed over.
///
/// Verdicts still due (a long delay) or held (kNever) when it is destroyed are dropped unanswered:
/// a test releases them first (release_held) while what they call back into is still alive.

#include <gmock/gmock.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pix/broker/publisher.hpp"

namespace pix::testing {

class ScriptedPublisher : public broker::Publisher {
 public:
  enum class Reply {
    kAck,          ///< acknowledged at once
    kDelayedAck,   ///< acknowledged after Step::delay
    kReject,       ///< permanently refused (kRejected)
    kUnavailable,  ///< retryable (kBrokerUnavailable)
    kTimeout,      ///< no ack within the deadline (kTimedOut), after Step::delay
    kNever,        ///< held until release_held(): the broker never answers (drain() counts it)
  };
  struct Step {
    Reply reply = Reply::kAck;
    std::chrono::milliseconds delay{0};
  };

  ScriptedPublisher() : worker_([this] { run(); }) {}
  ~ScriptedPublisher() override {
    {
      std::lock_guard lock(mutex_);
      quitting_ = true;
    }
    wake_.notify_all();
    worker_.join();
  }
  ScriptedPublisher(const ScriptedPublisher&) = delete;
  ScriptedPublisher& operator=(const ScriptedPublisher&) = delete;

  /// The next publish (after those already scripted) gets `step`.
  void then(Step step) {
    std::lock_guard lock(mutex_);
    script_.push_back(step);
  }
  void then(Reply reply, std::chrono::milliseconds delay = {}) { then(Step{reply, delay}); }
  /// What every publish gets once the script is used up (kAck unless told).
  void otherwise(Reply reply, std::chrono::milliseconds delay = {}) {
    std::lock_guard lock(mutex_);
    fallback_ = Step{reply, delay};
  }
  /// Probes answer `ready` with `detail`.
  void set_ready(bool ready, std::string detail = {}) {
    std::lock_guard lock(mutex_);
    ready_ = ready;
    ready_detail_ = std::move(detail);
  }

  /// Every event handed over, in order.
  std::vector<broker::OutboundEvent> published() const {
    std::lock_guard lock(mutex_);
    return published_;
  }
  std::size_t held() const {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  /// Answers every held (kNever) event with `status` now.
  void release_held(broker::PublishStatus status) {
    std::vector<broker::PublishCallback> held;
    {
      std::lock_guard lock(mutex_);
      held.swap(held_);
      in_flight_ -= held.size();
    }
    for (auto& done : held) done(broker::PublishResult{status, "released by the test", -1, -1});
  }
  /// Blocks until `n` events were handed over or `timeout` passed; true when they were.
  bool wait_published(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return published_.size() >= n; });
  }

  MOCK_METHOD(void, on_publish, (const broker::OutboundEvent& event));

  void publish(broker::OutboundEvent event, broker::PublishCallback done) override {
    on_publish(event);
    std::lock_guard lock(mutex_);
    published_.push_back(event);
    changed_.notify_all();
    if (draining_) {
      due_.emplace(Clock::now(), Pending{broker::PublishStatus::kShuttingDown, std::move(done)});
      wake_.notify_all();
      return;
    }
    Step step = fallback_;
    if (!script_.empty()) {
      step = script_.front();
      script_.pop_front();
    }
    ++in_flight_;
    if (step.reply == Reply::kNever) {
      held_.push_back(std::move(done));
      return;
    }
    due_.emplace(Clock::now() + step.delay, Pending{status_of(step.reply), std::move(done)});
    wake_.notify_all();
  }

  /// Answered on the worker thread with what set_ready() said last.
  void probe(broker::ProbeCallback done) override {
    std::lock_guard lock(mutex_);
    probes_.push_back(std::move(done));
    wake_.notify_all();
  }

  std::size_t drain(std::chrono::milliseconds deadline) override {
    std::unique_lock lock(mutex_);
    draining_ = true;
    changed_.wait_for(lock, deadline, [&] { return in_flight_ == held_.size() && due_.empty(); });
    return in_flight_;
  }

  std::size_t in_flight() const noexcept override {
    std::lock_guard lock(mutex_);
    return in_flight_;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    broker::PublishStatus status;
    broker::PublishCallback done;
  };

  static broker::PublishStatus status_of(Reply reply) {
    switch (reply) {
      case Reply::kAck:
      case Reply::kDelayedAck:
        return broker::PublishStatus::kAcked;
      case Reply::kReject:
        return broker::PublishStatus::kRejected;
      case Reply::kUnavailable:
        return broker::PublishStatus::kBrokerUnavailable;
      case Reply::kTimeout:
        return broker::PublishStatus::kTimedOut;
      case Reply::kNever:
        break;
    }
    return broker::PublishStatus::kBrokerUnavailable;
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (!quitting_) {
      if (!probes_.empty()) {
        broker::ProbeCallback done = std::move(probes_.front());
        probes_.pop_front();
        const bool ready = ready_;
        std::string detail = ready_detail_;
        lock.unlock();
        done(ready, std::move(detail));
        lock.lock();
        continue;
      }
      if (due_.empty()) {
        wake_.wait(lock);
        continue;
      }
      auto first = due_.begin();
      if (first->first > Clock::now()) {
        wake_.wait_until(lock, first->first);
        continue;
      }
      Pending pending = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      broker::PublishResult result;
      result.status = pending.status;
      if (pending.status == broker::PublishStatus::kAcked) {
        result.partition = 0;
        result.offset = static_cast<std::int64_t>(next_offset_++);
      } else {
        result.detail = std::string("scripted ") + std::string(broker::to_string(pending.status));
      }
      pending.done(std::move(result));
      lock.lock();
      if (pending.status != broker::PublishStatus::kShuttingDown) --in_flight_;
      changed_.notify_all();
    }
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::condition_variable wake_;
  std::deque<Step> script_;
  Step fallback_{};
  bool ready_ = true;
  std::string ready_detail_;
  std::vector<broker::OutboundEvent> published_;
  std::vector<broker::PublishCallback> held_;
  std::multimap<Clock::time_point, Pending> due_;
  std::deque<broker::ProbeCallback> probes_;
  std::size_t in_flight_ = 0;
  std::uint64_t next_offset_ = 0;  // worker thread only
  bool draining_ = false;
  bool quitting_ = false;
  std::thread worker_;  // last: starts after every member above exists
};

}  // namespace pix::testing
