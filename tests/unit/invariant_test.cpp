// PIX_BUG: a broken invariant is counted every time, logged at most once a minute per call site
// with its file:line, never fatal, and exported by every process.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "log_capture.hpp"
#include "pix/telemetry/metrics.hpp"
#include "pix/util/invariant.hpp"

namespace pix::util {
namespace {

using namespace std::chrono_literals;

using test::LogCapture;

void violate_at_one_site(int value) {
  PIX_BUG(value == 0, "value was {}", value);
}

TEST(Invariant, AHoldingInvariantCountsNothingAndDoesNotEvaluateItsMessage) {
  LogCapture logs;
  const auto before = invariant_violations();
  int evaluated = 0;
  const auto costly = [&] { return ++evaluated; };
  PIX_BUG(1 + 1 == 2, "never formatted {}", costly());
  EXPECT_EQ(invariant_violations(), before);
  EXPECT_EQ(evaluated, 0);
  EXPECT_TRUE(logs.lines().empty());
}

TEST(Invariant, EveryViolationIsCountedButASiteLogsOnceAMinute) {
  LogCapture logs;
  const auto before = invariant_violations();
  for (int i = 1; i <= 5; ++i) violate_at_one_site(i);
  EXPECT_EQ(invariant_violations(), before + 5);
  const auto lines = logs.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("[error]"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("invariant_test.cpp:"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("value == 0"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("value was 1"), std::string::npos) << lines[0];
}

TEST(Invariant, TwoSitesLogIndependently) {
  LogCapture logs;
  PIX_BUG(false, "first site");
  PIX_BUG(false, "second site");
  const auto lines = logs.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("first site"), std::string::npos);
  EXPECT_NE(lines[1].find("second site"), std::string::npos);
}

TEST(Invariant, ASiteLogsAgainAfterAMinuteSayingHowManyItKeptQuiet) {
  LogCapture logs;
  detail::BugSite site{"src/pix/x.cpp", 7, "ok"};
  const std::chrono::steady_clock::time_point t0{1h};
  ASSERT_TRUE(site.record(t0));
  site.log("first");
  EXPECT_FALSE(site.record(t0 + 1s));
  EXPECT_FALSE(site.record(t0 + 59s));
  ASSERT_TRUE(site.record(t0 + 60s));
  site.log("again");
  const auto lines = logs.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("src/pix/x.cpp:7 (ok): first"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("again [2 more here since the last report]"), std::string::npos) << lines[1];
}

TEST(Invariant, AMessageThatCannotBeFormattedStillLogsTheViolation) {
  LogCapture logs;
  const auto before = invariant_violations();
  // fmt checks literal format strings at compile time: only a runtime one can be wrong.
  PIX_BUG(false, fmt::runtime("{} {}"), 1);
  EXPECT_EQ(invariant_violations(), before + 1);
  ASSERT_EQ(logs.lines().size(), 1u);
  EXPECT_NE(logs.lines()[0].find("invariant violated at"), std::string::npos);
}

TEST(Invariant, EveryProcessExportsTheCount) {
  telemetry::Registry registry;
  telemetry::register_build_info(registry, "test");
  {
    LogCapture quiet;
    PIX_BUG(false, "one more for the scrape");
  }
  const std::string text = registry.render();
  EXPECT_NE(text.find("# TYPE pix_invariant_violations_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\npix_invariant_violations_total " + std::to_string(invariant_violations()) + "\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace pix::util
