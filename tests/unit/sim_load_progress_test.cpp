// The load engine's progress line and how the shards' counts add up, without a server: the
// internal units run_load is made of (src/pix/sim/load_progress.hpp, load_stats.hpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "pix/sim/load_progress.hpp"
#include "pix/sim/load_stats.hpp"

namespace pix::sim::detail {
namespace {

using namespace std::chrono_literals;

/// What was written to a FILE*, for the line's exact bytes.
class Capture {
 public:
  Capture() : file_(std::tmpfile(), &std::fclose) {}
  std::FILE* file() { return file_.get(); }
  std::string text() {
    std::fflush(file_.get());
    std::rewind(file_.get());
    std::string out;
    for (int c = std::fgetc(file_.get()); c != EOF; c = std::fgetc(file_.get())) out.push_back(static_cast<char>(c));
    return out;
  }

 private:
  std::unique_ptr<std::FILE, decltype(&std::fclose)> file_;
};

ProgressSnapshot totals(std::uint64_t completed, std::chrono::nanoseconds latency) {
  ProgressSnapshot s;
  s.sent = completed + 2;
  s.ok = completed - 1;
  s.failed = 1;
  s.completed = completed;
  for (std::uint64_t i = 0; i < completed; ++i) s.latency_all.record(latency);
  return s;
}

TEST(SimProgressLine, OneLinePerSecondWithTheRateOfTheLastOne) {
  Capture out;
  const auto start = ProgressLine::Clock::time_point{} + 1h;
  ProgressLine line(out.file(), false, start);
  line.print(start + 1s, totals(100, 2ms));
  line.print(start + 3s, totals(500, 2ms));
  line.finish();  // not a terminal: every line ended already
  EXPECT_EQ(out.text(),
            "[   1s] sent 102  ok 99  err 1  rate 100/s  p99 2.0ms\n"
            "[   3s] sent 502  ok 499  err 1  rate 200/s  p99 2.0ms\n");
}

TEST(SimProgressLine, OnATerminalTheLineIsRedrawnAndEndedOnce) {
  Capture out;
  const auto start = ProgressLine::Clock::time_point{} + 1h;
  ProgressLine line(out.file(), true, start);
  line.print(start + 1s, totals(10, 500us));
  line.finish();
  EXPECT_EQ(out.text(), "\r[   1s] sent 12  ok 9  err 1  rate 10/s  p99 500us\033[K\n");

  Capture silent;
  ProgressLine never_printed(silent.file(), true, start);
  never_printed.finish();
  EXPECT_EQ(silent.text(), "");
}

TEST(SimProgressLine, ShortLatencyPicksTheUnit) {
  EXPECT_EQ(short_latency(850us), "850us");
  EXPECT_EQ(short_latency(12345us), "12.3ms");
  EXPECT_EQ(short_latency(1250ms), "1.25s");
}

TEST(SimLoadStats, ShardsAddUpIntoTheResult) {
  Stats a, b;
  a.sent = 10;
  a.completed = 9;
  a.unsent = 1;
  a.connections_opened = 2;
  a.peak_connections = 2;
  a.status_counts = {{200, 8}, {503, 1}};
  a.errors[static_cast<std::size_t>(TransportError::kTimeout)] = 1;
  a.latency_ok.record(1ms);
  a.answers.emplace_back().seq = 0;
  b.sent = 5;
  b.completed = 5;
  b.peak_connections = 3;
  b.reconnects = 1;
  b.status_counts = {{200, 4}, {500, 1}};
  b.latency_ok.record(3ms);
  b.answers.emplace_back().seq = 1;

  LoadResult r;
  add_to(r, a);
  add_to(r, b);
  EXPECT_EQ(r.sent, 15u);
  EXPECT_EQ(r.completed, 14u);
  EXPECT_EQ(r.unsent, 1u);
  EXPECT_EQ(r.connections_opened, 2u);
  EXPECT_EQ(r.peak_connections, 5u);  // each shard's own connections
  EXPECT_EQ(r.reconnects, 1u);
  EXPECT_EQ(r.ok(), 12u);
  EXPECT_EQ(r.server_errors(), 2u);
  EXPECT_EQ(r.transport_errors(), 1u);
  EXPECT_EQ(r.latency_ok.count(), 2u);
  EXPECT_EQ(r.latency_ok.max(), 3ms);
  ASSERT_EQ(r.answers.size(), 2u);
  EXPECT_EQ(r.answers[1].seq, 1u);

  ProgressSnapshot s;
  add_to(s, a);
  add_to(s, b);
  EXPECT_EQ(s.sent, 15u);
  EXPECT_EQ(s.completed, 14u);
}

}  // namespace
}  // namespace pix::sim::detail
