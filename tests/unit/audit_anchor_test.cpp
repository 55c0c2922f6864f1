// The audit chain against its anchor: the tail the auditor announced on pix.audit.log must still
// be in the store, with the same hash. The chain alone cannot show a cut-off tail.
#include "pix/audit/audit_anchor.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "pix/saga/handlers.hpp"
#include "pix/storage/sqlite.hpp"
#include "temp_db_file.hpp"

namespace pix::audit {
namespace {

using test::TempDbFile;

void fill(AuditStore& store, int from, int to, const std::string& tag = "") {
  for (int i = from; i <= to; ++i) {
    ASSERT_TRUE(store
                    .append("evt-" + tag + std::to_string(i), "kafka:pix.payment.requested",
                            R"({"n":)" + std::to_string(i) + "}", 1000 + i)
                    .appended);
  }
}

/// What the auditor announced for the store's entry at `seq`.
AuditAnchor anchor_at(AuditStore& store, std::int64_t seq) {
  const auto at = store.entries(seq, 1);
  EXPECT_EQ(at.size(), 1u);
  AuditAnchor a;
  a.seq = seq;
  a.hash = at.empty() ? "" : at.front().hash;
  a.origin = "t.pix.audit.log (partition 1, offset 9)";
  return a;
}

/// Deletes rows behind the store's back, as someone with write access to the file would: the
/// append-only triggers dropped first.
void cut_tail(const std::string& path, std::int64_t keep_through_seq, std::int64_t expected_deleted) {
  storage::Database db(path);
  db.exec("DROP TRIGGER entries_append_only_update; DROP TRIGGER entries_append_only_delete;");
  db.exec("DELETE FROM entries WHERE seq > " + std::to_string(keep_through_seq));
  ASSERT_EQ(db.changes(), expected_deleted);
}

TEST(AuditAnchor, AnIntactStoreReachesTheAnchorOfItsLastEntry) {
  TempDbFile file;
  AuditStore store(file.path());
  fill(store, 1, 5);
  const AnchorVerdict v = check_anchor(store, anchor_at(store, 5));
  EXPECT_TRUE(v.ok) << v.detail;
  EXPECT_EQ(v.status, AnchorStatus::kReached);
  EXPECT_EQ(v.chain_end, 5);
  EXPECT_EQ(v.past_anchor, 0u);
  EXPECT_NE(v.detail.find("0 entries past it"), std::string::npos) << v.detail;
}

TEST(AuditAnchor, AStoreAheadOfTheAnchorIsFineAndCountsTheEntriesPastIt) {
  TempDbFile file;
  AuditStore store(file.path());
  fill(store, 1, 3);
  const AuditAnchor anchor = anchor_at(store, 3);
  fill(store, 4, 5);  // appended, their announcements not acknowledged yet
  const AnchorVerdict v = check_anchor(store, anchor);
  EXPECT_TRUE(v.ok) << v.detail;
  EXPECT_EQ(v.status, AnchorStatus::kReached);
  EXPECT_EQ(v.chain_end, 5);
  EXPECT_EQ(v.past_anchor, 2u);
  EXPECT_NE(v.detail.find("2 entries past it"), std::string::npos) << v.detail;
}

TEST(AuditAnchor, ATruncatedTailIsDetectedAndNamesBothSeqs) {
  TempDbFile file;
  AuditStore store(file.path());
  fill(store, 1, 5);
  const AuditAnchor anchor = anchor_at(store, 5);
  cut_tail(file.path(), 3, 2);

  // The file alone cannot tell: what is left is a valid chain.
  const VerifyReport walked = store.verify();
  EXPECT_TRUE(walked.ok) << walked.reason;
  EXPECT_EQ(walked.entries, 3u);

  const AnchorVerdict v = check_anchor(store, anchor);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, AnchorStatus::kTruncated);
  EXPECT_EQ(v.chain_end, 3);
  EXPECT_NE(v.detail.find("the chain ends at seq 3"), std::string::npos) << v.detail;
  EXPECT_NE(v.detail.find("announced seq 5 (hash " + anchor.hash + ")"), std::string::npos) << v.detail;
  EXPECT_NE(v.detail.find(anchor.origin), std::string::npos) << v.detail;
}

TEST(AuditAnchor, AStoreEmptiedOfEveryEntryIsTruncatedToo) {
  TempDbFile file;
  AuditStore store(file.path());
  fill(store, 1, 2);
  const AuditAnchor anchor = anchor_at(store, 2);
  cut_tail(file.path(), 0, 2);
  const AnchorVerdict v = check_anchor(store, anchor);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, AnchorStatus::kTruncated);
  EXPECT_EQ(v.chain_end, 0);
  EXPECT_NE(v.detail.find("the chain is empty"), std::string::npos) << v.detail;
  EXPECT_NE(v.detail.find("announced seq 2"), std::string::npos) << v.detail;
}

TEST(AuditAnchor, ATailCutAndRegrownToTheSameLengthDiffersAtTheAnnouncedSeq) {
  TempDbFile file;
  AuditStore store(file.path());
  fill(store, 1, 5);
  const AuditAnchor anchor = anchor_at(store, 5);
  cut_tail(file.path(), 3, 2);
  fill(store, 4, 5, "forged-");  // seqs 4 and 5 again, other events: the chain verifies

  const VerifyReport walked = store.verify();
  EXPECT_TRUE(walked.ok) << walked.reason;
  EXPECT_EQ(walked.entries, 5u);

  const AnchorVerdict v = check_anchor(store, anchor);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, AnchorStatus::kDiverged);
  EXPECT_EQ(v.chain_end, 5);
  EXPECT_NE(v.detail.find("the entry at seq 5 differs from the one announced on " + anchor.origin), std::string::npos)
      << v.detail;
  EXPECT_NE(v.detail.find(anchor.hash), std::string::npos) << v.detail;
}

TEST(AuditAnchor, ADivergedEntryBeforeTheEndIsDetectedEvenWhenTheStoreIsAhead) {
  TempDbFile file;
  AuditStore store(file.path());
  fill(store, 1, 5);
  AuditAnchor anchor = anchor_at(store, 4);
  anchor.hash = std::string(64, 'a');  // announced another entry 4
  const AnchorVerdict v = check_anchor(store, anchor);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, AnchorStatus::kDiverged);
  EXPECT_NE(v.detail.find("the entry at seq 4 differs"), std::string::npos) << v.detail;
}

TEST(AuditAnchor, WithoutAnAnchorTheStoreIsFine) {
  TempDbFile file;
  AuditStore store(file.path());
  const AnchorVerdict empty = check_anchor(store, std::nullopt);
  EXPECT_TRUE(empty.ok);
  EXPECT_EQ(empty.status, AnchorStatus::kNoAnchor);
  EXPECT_EQ(empty.chain_end, 0);

  fill(store, 1, 3);
  const AnchorVerdict v = check_anchor(store, std::nullopt);
  EXPECT_TRUE(v.ok) << v.detail;
  EXPECT_EQ(v.status, AnchorStatus::kNoAnchor);
  EXPECT_EQ(v.chain_end, 3);
}

TEST(AuditAnchor, ParsesTheAnnouncementTheAuditorPublishes) {
  TempDbFile file;
  auto store = std::make_shared<AuditStore>(file.path());
  saga::Auditor auditor(store);
  auditor.audit("evt-1", "kafka:pix.payment.requested", R"({"transactionId":"tx-1"})", "");
  const auto event = auditor.audit("evt-2", "kafka:pix.payment.requested", R"({"transactionId":"tx-2"})", "");

  const auto anchor = parse_anchor(event.payload);
  ASSERT_TRUE(anchor.has_value()) << event.payload;
  EXPECT_EQ(anchor->seq, 2);
  EXPECT_EQ(anchor->hash, store->last()->hash);
  EXPECT_TRUE(check_anchor(*store, anchor).ok);
}

TEST(AuditAnchor, ARecordThatAnnouncesNoEntryIsNoAnchor) {
  for (const char* value : {"", "not json", "[1,2]", R"("seq")", R"({"transactionId":"tx123","action":"completed"})",
                            R"({"seq":"5","hash":"ab"})", R"({"seq":5})", R"({"hash":"ab"})", R"({"seq":5,"hash":""})",
                            R"({"seq":5,"hash":7})", R"({"seq":0,"hash":"ab"})", R"({"seq":-3,"hash":"ab"})",
                            R"({"seq":5.5,"hash":"ab"})", R"({"seq":18446744073709551615,"hash":"ab"})"}) {
    EXPECT_FALSE(parse_anchor(value).has_value()) << value;
  }
  const auto ok = parse_anchor(R"({"seq":7,"hash":"ab","prevHash":"cd"})");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->seq, 7);
  EXPECT_EQ(ok->hash, "ab");
}

}  // namespace
}  // namespace pix::audit
