// The stage's at-least-once loop, through its seams: records from a FakeRecordSource the test
// feeds, outputs to a ScriptedPublisher whose verdicts the test scripts. What is asserted is what
// a user would notice: which offsets are committed (so which records a restart replays), what
// reaches the dead-letter topic, and what readiness says.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pix/saga/record_source.hpp"
#include "pix/saga/stage.hpp"
#include "pix/service/lifecycle.hpp"
#include "scripted_publisher.hpp"

namespace pix::saga {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Reply = testing::ScriptedPublisher::Reply;

// Generous: a condition that holds is met in milliseconds; these only bound a broken run.
constexpr auto kPatience = 30s;
constexpr const char* kInput = "pix.in";
constexpr const char* kOutput = "pix.out";
constexpr const char* kDeadLetters = "pix.dlq.test";

/// What happened, in the order it happened, across the stage's thread and the publisher's:
/// "acked <topic>:<event id>", "done <partition>@<offset>", "commit <partition>:<position>" (each
/// move of a committed position), "revoked <partition>".
class Journal {
 public:
  void add(std::string entry) {
    {
      std::lock_guard lock(mutex_);
      entries_.push_back(std::move(entry));
    }
    changed_.notify_all();
  }
  /// Waits until `entry` was added; true when it was.
  bool wait_for(const std::string& entry) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return contains_locked(entry); });
  }
  bool contains(const std::string& entry) const {
    std::lock_guard lock(mutex_);
    return contains_locked(entry);
  }
  /// Position of `entry` (the entries count when absent).
  std::size_t position(const std::string& entry) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::find(entries_.begin(), entries_.end(), entry) - entries_.begin());
  }
  /// Position of the first entry starting with `prefix` (the entries count when none does).
  std::size_t first_with_prefix(const std::string& prefix) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::find_if(entries_.begin(), entries_.end(), [&](const std::string& e) { return e.starts_with(prefix); }) -
        entries_.begin());
  }

 private:
  bool contains_locked(const std::string& entry) const {
    return std::find(entries_.begin(), entries_.end(), entry) != entries_.end();
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> entries_;
};

/// The ScriptedPublisher, with each verdict the stage receives written to the journal just before
/// the stage gets it (ScriptedPublisher has no hook for "answered", only for "handed over").
class JournaledPublisher final : public broker::Publisher {
 public:
  JournaledPublisher(testing::ScriptedPublisher& inner, Journal& journal) : inner_(inner), journal_(journal) {}
  void publish(broker::OutboundEvent event, broker::PublishCallback done) override {
    const std::string id = event.topic + ":" + event.id;
    inner_.publish(std::move(event), [this, id, done = std::move(done)](broker::PublishResult r) {
      if (r.status == broker::PublishStatus::kAcked) journal_.add("acked " + id);
      done(std::move(r));
    });
  }
  void probe(broker::ProbeCallback done) override { inner_.probe(std::move(done)); }
  std::size_t drain(std::chrono::milliseconds deadline) override { return inner_.drain(deadline); }
  std::size_t in_flight() const noexcept override { return inner_.in_flight(); }

 private:
  testing::ScriptedPublisher& inner_;
  Journal& journal_;
};

/// A RecordSource whose records the test delivers and whose revocations it triggers; it commits
/// as KafkaConsumer does (per partition, the offset after the longest prefix of done records).
class FakeRecordSource final : public RecordSource {
 public:
  explicit FakeRecordSource(Journal& journal) : journal_(journal) {}

  // The test's side (any thread).
  void deliver(std::int32_t partition, std::int64_t offset, std::string value = "{}") {
    kafka::ConsumedRecord r;
    r.topic = kInput;
    r.partition = partition;
    r.offset = offset;
    r.key = "key-" + std::to_string(offset);
    r.value = std::move(value);
    r.headers["ce_id"] = "event-" + std::to_string(partition) + "-" + std::to_string(offset);
    {
      std::lock_guard lock(mutex_);
      incoming_.push_back(std::move(r));
    }
    changed_.notify_all();
  }
  /// The next poll() runs the stage's revocation hook for `partitions`, then commits and forgets
  /// them (as the consumer does before giving them away).
  void revoke(std::vector<std::int32_t> partitions) {
    {
      std::lock_guard lock(mutex_);
      revocations_.push_back(std::move(partitions));
    }
    changed_.notify_all();
  }
  void set_assigned(bool assigned) { assigned_ = assigned; }
  /// The committed position of the input partition (the next offset a restart reads), -1: none.
  std::int64_t committed(std::int32_t partition) const {
    std::lock_guard lock(mutex_);
    auto it = committed_.find(partition);
    return it == committed_.end() ? -1 : it->second;
  }
  bool marked_done(std::int32_t partition, std::int64_t offset) const {
    return journal_.contains(done_entry(partition, offset));
  }
  /// Waits until the committed position of `partition` is at least `position`.
  bool wait_committed(std::int32_t partition, std::int64_t position) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] {
      auto it = committed_.find(partition);
      return it != committed_.end() && it->second >= position;
    });
  }
  /// Waits until `n` more commits than `seen` were made (the stage had the chance to commit).
  bool wait_commits_after(std::size_t seen, std::size_t n) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return commits_ >= seen + n; });
  }
  std::size_t commits() const {
    std::lock_guard lock(mutex_);
    return commits_;
  }
  bool sync_committed() const {
    std::lock_guard lock(mutex_);
    return sync_commits_ > 0;
  }
  /// Waits until the stage is inside its revocation hook.
  bool wait_revoking() const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return revoking_; });
  }
  static std::string done_entry(std::int32_t partition, std::int64_t offset) {
    return "done " + std::to_string(partition) + "@" + std::to_string(offset);
  }

  // The stage's side (its thread).
  void on_before_revoke(RevokeHook hook) override { hook_ = std::move(hook); }

  std::optional<kafka::ConsumedRecord> poll(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return !incoming_.empty() || !revocations_.empty(); });
    if (!revocations_.empty()) {
      auto partitions = std::move(revocations_.front());
      revocations_.pop_front();
      revoking_ = true;
      lock.unlock();
      changed_.notify_all();
      Partitions revoked;
      for (auto p : partitions) revoked.emplace_back(kInput, p);
      if (hook_) hook_(revoked);
      commit(true);
      lock.lock();
      revoking_ = false;
      for (auto p : partitions) progress_.erase(p);
      return std::nullopt;
    }
    if (incoming_.empty()) return std::nullopt;
    kafka::ConsumedRecord r = std::move(incoming_.front());
    incoming_.pop_front();
    progress_[r.partition].emplace(r.offset, false);
    return r;
  }

  void mark_done(const std::string& topic, std::int32_t partition, std::int64_t offset) override {
    EXPECT_EQ(topic, kInput);
    {
      std::lock_guard lock(mutex_);
      auto p = progress_.find(partition);
      if (p != progress_.end()) {
        if (auto o = p->second.find(offset); o != p->second.end()) o->second = true;
      }
    }
    journal_.add(done_entry(partition, offset));
  }

  void commit(bool sync) override {
    std::vector<std::string> moved;
    {
      std::lock_guard lock(mutex_);
      ++commits_;
      if (sync) ++sync_commits_;
      for (auto& [partition, seen] : progress_) {
        bool advanced = false;
        while (!seen.empty() && seen.begin()->second) {
          committed_[partition] = seen.begin()->first + 1;
          seen.erase(seen.begin());
          advanced = true;
        }
        if (advanced)
          moved.push_back("commit " + std::to_string(partition) + ":" + std::to_string(committed_[partition]));
      }
    }
    for (auto& entry : moved) journal_.add(std::move(entry));
    changed_.notify_all();
  }

  bool assigned() const noexcept override { return assigned_; }
  std::int64_t lag() const noexcept override { return 0; }

 private:
  Journal& journal_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::deque<kafka::ConsumedRecord> incoming_;
  std::deque<std::vector<std::int32_t>> revocations_;
  std::map<std::int32_t, std::map<std::int64_t, bool>> progress_;  // polled, not committed: done?
  std::map<std::int32_t, std::int64_t> committed_;
  std::size_t commits_ = 0;
  std::size_t sync_commits_ = 0;
  bool revoking_ = false;
  std::atomic<bool> assigned_{true};
  RevokeHook hook_;
};

/// One output per record, to kOutput, with the record's event id.
HandlerResult one_output(const kafka::ConsumedRecord& record) {
  broker::OutboundEvent out;
  out.topic = kOutput;
  out.key = record.key;
  out.id = event_id_of(record) + ":out";
  out.payload = record.value;
  return {{Output{Sink::kKafka, std::move(out)}}, {}};
}

StageOptions fast_options() {
  StageOptions o;
  o.name = "stage-test";
  o.dead_letter_topic = kDeadLetters;
  o.commit_interval = 5ms;
  o.retry_backoff = 1ms;
  o.retry_backoff_max = 4ms;
  o.drain_timeout = kPatience;  // a test that wants the bound to end sets a short one
  o.max_refusals = 3;
  return o;
}

std::string header(const broker::OutboundEvent& event, const std::string& name) {
  for (const auto& h : event.headers) {
    if (h.name == name) return h.value;
  }
  return {};
}

/// A stage over a FakeRecordSource and a ScriptedPublisher, running on its own thread.
class KafkaStageTest : public ::testing::Test {
 protected:
  void start(StageOptions options = fast_options(), Handler handler = one_output) {
    auto records = std::make_unique<FakeRecordSource>(journal);
    source = records.get();
    stage = std::make_unique<KafkaStage>(std::move(options), std::move(handler), std::move(records), kafka, nullptr,
                                         metrics);
    running = std::async(std::launch::async, [this] { stage->run(stop); });
  }
  /// Asks the stop and waits (bounded) for run() to return; false if it did not.
  bool stop_and_wait() {
    stop.request_stop("test");
    if (running.wait_for(kPatience) != std::future_status::ready) return false;
    running.get();
    return true;
  }
  void TearDown() override {
    if (running.valid()) {
      // Let whatever a test held go, so that the drain ends and run() returns.
      scripted.release_held(broker::PublishStatus::kShuttingDown);
      EXPECT_TRUE(stop_and_wait());
    }
  }
  /// Starts a stage that journals on_revoked ("revoked <partition>"), gives it record 0@3 whose
  /// output is held (kNever), and revokes partition 0.
  void revoke_with_an_output_held(std::chrono::milliseconds drain_timeout) {
    auto options = fast_options();
    options.drain_timeout = drain_timeout;
    options.on_revoked = [this](const std::string& topic, std::int32_t partition) {
      EXPECT_EQ(topic, kInput);
      journal.add("revoked " + std::to_string(partition));
    };
    scripted.then(Reply::kNever);
    start(options);
    source->deliver(0, 3);
    ASSERT_TRUE(scripted.wait_published(1, kPatience));
    source->revoke({0});
  }
  /// Polls `condition` (a value read from another thread) with a deadline.
  static bool eventually(const std::function<bool()>& condition) {
    const auto deadline = Clock::now() + kPatience;
    while (!condition()) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }
  std::vector<broker::OutboundEvent> published_to(const std::string& topic) const {
    std::vector<broker::OutboundEvent> out;
    for (auto& e : scripted.published()) {
      if (e.topic == topic) out.push_back(e);
    }
    return out;
  }

  Journal journal;
  ::testing::NiceMock<testing::ScriptedPublisher> scripted;  // before the stage: its worker may still answer the stage
  JournaledPublisher kafka{scripted, journal};
  telemetry::Registry metrics;
  service::StopSource stop;
  FakeRecordSource* source = nullptr;  // owned by the stage
  std::unique_ptr<KafkaStage> stage;
  std::future<void> running;
};

TEST_F(KafkaStageTest, ARecordIsDoneAndCommittedOnlyOnceEveryOutputIsAcked) {
  scripted.then(Reply::kAck);
  scripted.then(Reply::kNever);
  start(fast_options(), [](const kafka::ConsumedRecord& record) {
    HandlerResult two = one_output(record);
    two.outputs.push_back(two.outputs.front());
    two.outputs.back().event.id += "-2";
    return two;
  });
  source->deliver(0, 0);
  ASSERT_TRUE(scripted.wait_published(2, kPatience));
  ASSERT_TRUE(journal.wait_for("acked pix.out:event-0-0:out"));
  // The stage commits on and on meanwhile, and never past the record with an output unanswered.
  ASSERT_TRUE(source->wait_commits_after(source->commits(), 3));
  EXPECT_FALSE(source->marked_done(0, 0));
  EXPECT_EQ(source->committed(0), -1);

  scripted.release_held(broker::PublishStatus::kAcked);
  ASSERT_TRUE(source->wait_committed(0, 1));
  EXPECT_LT(journal.position("acked pix.out:event-0-0:out-2"), journal.position(FakeRecordSource::done_entry(0, 0)));
}

TEST_F(KafkaStageTest, ADelayedAckHoldsTheCommitOfItsRecordAndOfTheRecordsAfterIt) {
  scripted.then(Reply::kDelayedAck, 200ms);
  scripted.then(Reply::kAck);  // record 1, acked (typically) long before record 0
  start();
  source->deliver(0, 0);
  source->deliver(0, 1);
  ASSERT_TRUE(source->wait_committed(0, 2));
  // However the two acks came, the committed position first moved after record 0's.
  EXPECT_LT(journal.position("acked pix.out:event-0-0:out"), journal.first_with_prefix("commit 0:"));
  EXPECT_LT(journal.position("acked pix.out:event-0-0:out"), journal.position(FakeRecordSource::done_entry(0, 0)));
}

TEST_F(KafkaStageTest, AnOutputNotAcknowledgedIsResentWithTheSameEventIdUntilAckedThenCommitted) {
  scripted.then(Reply::kUnavailable);
  scripted.then(Reply::kTimeout);
  scripted.then(Reply::kUnavailable);
  scripted.then(Reply::kAck);
  start();
  source->deliver(0, 4);
  ASSERT_TRUE(source->wait_committed(0, 5));
  const auto sent = published_to(kOutput);
  ASSERT_EQ(sent.size(), 4U);
  for (const auto& e : sent) EXPECT_EQ(e.id, "event-0-4:out");
  EXPECT_TRUE(published_to(kDeadLetters).empty());
  EXPECT_LT(journal.position("acked pix.out:event-0-4:out"), journal.position(FakeRecordSource::done_entry(0, 4)));
}

TEST_F(KafkaStageTest, AnOutputRefusedMaxRefusalsTimesIsDeadLetteredAndTheRecordCompletes) {
  for (int i = 0; i < 3; ++i) scripted.then(Reply::kReject);
  start();
  source->deliver(0, 7, R"({"paymentId":"p-7"})");
  ASSERT_TRUE(source->wait_committed(0, 8));
  EXPECT_EQ(published_to(kOutput).size(), 3U);
  const auto dead = published_to(kDeadLetters);
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0].id, "event-0-7:out");
  EXPECT_EQ(dead[0].payload, R"({"paymentId":"p-7"})");
  EXPECT_NE(header(dead[0], "pix_dlq_reason").find("refused by the broker 3 times"), std::string::npos)
      << header(dead[0], "pix_dlq_reason");
  EXPECT_EQ(header(dead[0], "pix_dlq_stage"), "stage-test");
  EXPECT_EQ(header(dead[0], "pix_dlq_source"), "pix.in/0@7");
  EXPECT_LT(journal.position("acked pix.dlq.test:event-0-7:out"), journal.position(FakeRecordSource::done_entry(0, 7)));
}

TEST_F(KafkaStageTest, APoisonRecordIsDeadLetteredAndTheNextRecordIsProcessed) {
  start(fast_options(), [](const kafka::ConsumedRecord& record) {
    if (record.value == "not json") return HandlerResult{{}, "unparseable value"};
    return one_output(record);
  });
  source->deliver(0, 0, "not json");
  source->deliver(0, 1);
  ASSERT_TRUE(source->wait_committed(0, 2));
  const auto dead = published_to(kDeadLetters);
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0].id, "event-0-0");
  EXPECT_EQ(dead[0].key, "key-0");
  EXPECT_EQ(dead[0].payload, "not json");
  EXPECT_EQ(header(dead[0], "ce_id"), "event-0-0");
  EXPECT_EQ(header(dead[0], "pix_dlq_reason"), "unparseable value");
  EXPECT_EQ(header(dead[0], "pix_dlq_stage"), "stage-test");
  EXPECT_EQ(header(dead[0], "pix_dlq_source"), "pix.in/0@0");
  const auto out = published_to(kOutput);
  ASSERT_EQ(out.size(), 1U) << "the poison record's own outputs are not published";
  EXPECT_EQ(out[0].id, "event-0-1:out");
}

TEST_F(KafkaStageTest, AtTheStopAnOutputAckedWithinTheDrainIsCommitted) {
  scripted.then(Reply::kNever);
  start();
  source->deliver(0, 0);
  ASSERT_TRUE(scripted.wait_published(1, kPatience));
  stop.request_stop("test");
  // run() is draining (bounded by kPatience): the ack it waits for arrives.
  scripted.release_held(broker::PublishStatus::kAcked);
  ASSERT_EQ(running.wait_for(kPatience), std::future_status::ready);
  running.get();
  EXPECT_TRUE(source->marked_done(0, 0));
  EXPECT_EQ(source->committed(0), 1);
  EXPECT_TRUE(source->sync_committed());
}

TEST_F(KafkaStageTest, AtTheStopAnOutputNeverAckedEndsTheDrainAtItsBoundAndIsNotCommitted) {
  auto options = fast_options();
  options.drain_timeout = 50ms;
  scripted.then(Reply::kNever);
  scripted.then(Reply::kAck);
  start(options);
  source->deliver(0, 0);
  source->deliver(0, 1);
  ASSERT_TRUE(journal.wait_for(FakeRecordSource::done_entry(0, 1)));
  ASSERT_TRUE(stop_and_wait()) << "run() did not return after its drain bound";
  EXPECT_EQ(scripted.held(), 1U) << "the output was never answered";
  EXPECT_FALSE(source->marked_done(0, 0));
  EXPECT_TRUE(source->sync_committed());
  EXPECT_EQ(source->committed(0), -1) << "offset 0 is not done: a restart must read it again";
}

TEST_F(KafkaStageTest, ARevokedPartitionIsHandedOverOnlyOnceItsOutputsAreAcked) {
  ASSERT_NO_FATAL_FAILURE(revoke_with_an_output_held(kPatience));
  ASSERT_TRUE(source->wait_revoking());
  // The stage is in its revocation hook, waiting for the output (bound: kPatience).
  EXPECT_FALSE(journal.contains("revoked 0"));
  scripted.release_held(broker::PublishStatus::kAcked);
  ASSERT_TRUE(journal.wait_for("revoked 0"));
  EXPECT_LT(journal.position(FakeRecordSource::done_entry(0, 3)), journal.position("revoked 0"));
  ASSERT_TRUE(source->wait_committed(0, 4)) << "what was finished is committed before the hand-over";
}

TEST_F(KafkaStageTest, ARevokedPartitionWithAnOutputNeverAckedIsHandedOverAtTheBoundUnfinished) {
  ASSERT_NO_FATAL_FAILURE(revoke_with_an_output_held(50ms));
  ASSERT_TRUE(journal.wait_for("revoked 0"));
  EXPECT_FALSE(source->marked_done(0, 3));
  EXPECT_EQ(source->committed(0), -1) << "the next owner must read offset 3 again";
}

TEST_F(KafkaStageTest, ReadinessSaysRetryingWhileAnOutputIsStuckAndRecovers) {
  scripted.otherwise(Reply::kUnavailable);
  start();
  EXPECT_TRUE(stage->healthy());
  source->deliver(0, 0);
  ASSERT_TRUE(eventually([&] { return !stage->healthy(); }));
  EXPECT_EQ(stage->health_detail(), "outputs to pix.out retrying");
  EXPECT_EQ(source->committed(0), -1);

  scripted.otherwise(Reply::kAck);
  ASSERT_TRUE(source->wait_committed(0, 1));
  EXPECT_TRUE(eventually([&] { return stage->healthy(); }));
  EXPECT_EQ(stage->health_detail(), "");
  const auto sent = published_to(kOutput);
  EXPECT_GE(sent.size(), 6U) << "stuck after 5 failed attempts, acked at a later one";
}

TEST_F(KafkaStageTest, ReadinessSaysSoWhenNoPartitionIsAssigned) {
  start();
  source->set_assigned(false);
  EXPECT_FALSE(stage->healthy());
  EXPECT_EQ(stage->health_detail(), "no partitions assigned yet");
  source->set_assigned(true);
  EXPECT_TRUE(stage->healthy());
}

}  // namespace
}  // namespace pix::saga
