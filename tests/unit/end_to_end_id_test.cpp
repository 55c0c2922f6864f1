#include "pix/domain/end_to_end_id.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <unordered_set>

namespace pix::domain {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

// 2026-03-05 14:07:33 UTC
const system_clock::time_point kWhen = sys_days{2026y / March / 5} + 14h + 7min + 33s;
// Computed independently (a Python FNV-1a + SplitMix64) for seed "event-1".
constexpr std::string_view kPinnedTail = "QxDoAxwEjWm";

TEST(EndToEndIdMake, HasTheBcbLayout) {
  const std::string id = make_end_to_end_id(kDemoIspb, kWhen, "event-1");
  ASSERT_EQ(id.size(), kEndToEndIdLength);
  EXPECT_EQ(id.substr(0, 21), "E99999999202603051407");
  EXPECT_TRUE(is_valid_end_to_end_id(id)) << id;
}

TEST(EndToEndIdMake, TimeIsUtcToTheMinute) {
  const auto new_year_eve = sys_days{2026y / December / 31} + 23h + 59min + 59s;
  EXPECT_EQ(make_end_to_end_id("00038166", new_year_eve, "x").substr(1, 20), "00038166202612312359");
  EXPECT_EQ(make_end_to_end_id("00038166", new_year_eve + 1s, "x").substr(1, 20), "00038166202701010000");
}

TEST(EndToEndIdMake, SameSeedGivesTheSameId) {
  EXPECT_EQ(make_end_to_end_id(kDemoIspb, kWhen, "event-1"), make_end_to_end_id(kDemoIspb, kWhen, "event-1"));
  // Seconds do not show in the id, so a redelivery a few seconds later still matches.
  EXPECT_EQ(make_end_to_end_id(kDemoIspb, kWhen, "event-1"), make_end_to_end_id(kDemoIspb, kWhen + 20s, "event-1"));
}

TEST(EndToEndIdMake, KnownSeedGivesAFixedIdAcrossBuilds) {
  // The id must not depend on std::hash or the platform: a redelivery after an upgrade must still
  // name the same payment. Pinning one value catches an accidental change of the hash.
  const std::string a = make_end_to_end_id(kDemoIspb, kWhen, "event-1");
  const std::string b = make_end_to_end_id(kDemoIspb, kWhen, "event-2");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.substr(21), kPinnedTail);
}

TEST(EndToEndIdMake, DistinctSeedsGiveDistinctValidIds) {
  std::unordered_set<std::string> ids;
  for (int i = 0; i < 20000; ++i) {
    const std::string id = make_end_to_end_id(kDemoIspb, kWhen, "event-" + std::to_string(i));
    ASSERT_TRUE(is_valid_end_to_end_id(id)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 20000u);
}

TEST(EndToEndIdMake, AcceptsAlphanumericIspbAndRefusesBadOnes) {
  EXPECT_TRUE(is_valid_end_to_end_id(make_end_to_end_id("AB12CD34", kWhen, "s")));
  EXPECT_THROW(make_end_to_end_id("1234567", kWhen, "s"), std::invalid_argument);
  EXPECT_THROW(make_end_to_end_id("ab12cd34", kWhen, "s"), std::invalid_argument);
  EXPECT_TRUE(is_valid_ispb(kDemoIspb));
  EXPECT_FALSE(is_valid_ispb("123456789"));
}

TEST(EndToEndIdValidate, AcceptsWellFormedIds) {
  EXPECT_TRUE(is_valid_end_to_end_id("E00038166202601011200abcDEF12345"));
  EXPECT_TRUE(is_valid_end_to_end_id("EAB12CD34202612312359ZZZZZZZZZZZ"));
  EXPECT_TRUE(is_valid_end_to_end_id("E00038166202602310000a0000000000"));  // the BCB pattern has no calendar
}

TEST(EndToEndIdValidate, RefusesBadDatesAndTimes) {
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202613011200abcDEF12345"));  // month 13
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202600011200abcDEF12345"));  // month 00
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202601001200abcDEF12345"));  // day 00
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202601321200abcDEF12345"));  // day 32
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202601012400abcDEF12345"));  // hour 24
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202601011260abcDEF12345"));  // minute 60
  EXPECT_FALSE(is_valid_end_to_end_id("E000381662026010112a0abcDEF12345"));
}

TEST(EndToEndIdValidate, RefusesBadShapes) {
  EXPECT_FALSE(is_valid_end_to_end_id(""));
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202601011200abcDEF1234"));    // 31
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202601011200abcDEF123456"));  // 33
  EXPECT_FALSE(is_valid_end_to_end_id("D00038166202601011200abcDEF12345"));   // a return id
  EXPECT_FALSE(is_valid_end_to_end_id("e00038166202601011200abcDEF12345"));
  EXPECT_FALSE(is_valid_end_to_end_id("Eab12cd34202601011200abcDEF12345"));  // lowercase ISPB
  EXPECT_FALSE(is_valid_end_to_end_id("E00038166202601011200abcDEF1234-"));
}

}  // namespace
}  // namespace pix::domain
