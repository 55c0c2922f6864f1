#include "pix/audit/audit_store.hpp"

#include "pix/storage/sqlite.hpp"

#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <sqlite3.h>
#include "temp_db_file.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pix::audit {
namespace {

using namespace std::string_literals;

using test::TempDbFile;

std::string event_id(int i) {
  return "evt-" + std::to_string(i);
}

void fill(AuditStore& store, int n) {
  for (int i = 1; i <= n; ++i) {
    ASSERT_TRUE(
        store.append(event_id(i), "kafka:pix.payments", R"({"n":)" + std::to_string(i) + "}", 1000 + i).appended);
  }
}

bool is_lower_hex_64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

/// Opens the file behind the store's back, as an intruder (or a careless operator) would, and
/// drops the append-only triggers first.
void tamper(const std::string& path, const std::string& sql) {
  storage::Database db(path);
  db.exec("DROP TRIGGER entries_append_only_update; DROP TRIGGER entries_append_only_delete;");
  db.exec(sql);
  ASSERT_EQ(db.changes(), 1) << sql;
}

TEST(AuditStore, AppendChainsEachEntryToThePreviousOne) {
  TempDbFile file;
  AuditStore store(file.path());
  EXPECT_FALSE(store.last().has_value());

  const AppendResult a = store.append("evt-a", "kafka:pix.payments", "{}", 100);
  const AppendResult b = store.append("evt-b", "amqp:pix.notifications", "{\"x\":1}", 101);
  const AppendResult c = store.append("evt-c", "kafka:pix.payments", "", 99);  // clocks may step back
  ASSERT_TRUE(a.appended && b.appended && c.appended);

  EXPECT_EQ(a.entry.seq, 1);
  EXPECT_EQ(b.entry.seq, 2);
  EXPECT_EQ(c.entry.seq, 3);
  EXPECT_EQ(a.entry.prev_hash, std::string(kGenesisHash));
  EXPECT_EQ(b.entry.prev_hash, a.entry.hash);
  EXPECT_EQ(c.entry.prev_hash, b.entry.hash);
  for (const auto* e : {&a.entry, &b.entry, &c.entry}) EXPECT_TRUE(is_lower_hex_64(e->hash)) << e->hash;
  EXPECT_NE(a.entry.hash, b.entry.hash);

  EXPECT_EQ(store.count(), 3u);
  EXPECT_EQ(store.last(), c.entry);
  EXPECT_TRUE(store.contains("evt-b"));
  EXPECT_FALSE(store.contains("evt-z"));
  EXPECT_EQ(store.entries(1, 10), (std::vector<AuditEntry>{a.entry, b.entry, c.entry}));
}

TEST(AuditStore, DuplicateEventIdAppendsNothingAndReturnsTheStoredEntry) {
  TempDbFile file;
  AuditStore store(file.path());
  const AppendResult first = store.append("evt-1", "kafka:pix.payments", "original", 100);
  const AppendResult second = store.append("evt-2", "kafka:pix.payments", "other", 101);

  const AppendResult again = store.append("evt-1", "kafka:pix.payments", "original", 100);
  EXPECT_FALSE(again.appended);
  EXPECT_EQ(again.entry, first.entry);
  // A redelivery that differs (e.g. re-stamped) still does not replace what was recorded.
  const AppendResult altered = store.append("evt-1", "amqp:elsewhere", "changed", 999);
  EXPECT_FALSE(altered.appended);
  EXPECT_EQ(altered.entry, first.entry);

  EXPECT_EQ(store.count(), 2u);
  EXPECT_EQ(store.last(), second.entry);
  EXPECT_TRUE(store.verify().ok);
}

TEST(AuditStore, EntriesPagesBySeq) {
  TempDbFile file;
  AuditStore store(file.path());
  fill(store, 7);
  const std::vector<AuditEntry> page = store.entries(3, 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq, 3);
  EXPECT_EQ(page[0].event_id, "evt-3");
  EXPECT_EQ(page[1].seq, 4);
  EXPECT_EQ(store.entries(6, 100).size(), 2u);
  EXPECT_TRUE(store.entries(8, 100).empty());
  EXPECT_TRUE(store.entries(1, 0).empty());
  EXPECT_EQ(store.entries(-5, 1).front().seq, 1);
}

TEST(AuditStore, PayloadBytesRoundTripExactly) {
  TempDbFile file;
  AuditStore store(file.path());
  // Embedded NUL, invalid UTF-8, trailing whitespace: stored and hashed as given.
  const std::string payload = "a\0b\xff\xfe  \n"s;
  const AppendResult r = store.append("evt-bin", "kafka:x", payload, 1);
  EXPECT_EQ(r.entry.payload, payload);
  EXPECT_EQ(store.last()->payload, payload);
  EXPECT_TRUE(store.verify().ok);
}

TEST(AuditStore, TheApiCannotRewriteHistoryAndNeitherCanPlainSql) {
  TempDbFile file;
  AuditStore store(file.path());
  fill(store, 3);
  storage::Database db(file.path());
  for (const char* sql : {"UPDATE entries SET payload = 'x' WHERE seq = 2", "DELETE FROM entries WHERE seq = 2"}) {
    try {
      db.exec(sql);
      ADD_FAILURE() << sql << " succeeded";
    } catch (const storage::SqliteError& e) {
      EXPECT_EQ(e.primary_code(), SQLITE_CONSTRAINT) << e.what();
    }
  }
  EXPECT_EQ(store.count(), 3u);
  EXPECT_TRUE(store.verify().ok);
}

TEST(AuditStore, ChainSurvivesReopeningAndContinues) {
  TempDbFile file;
  AuditEntry last_before;
  {
    AuditStore store(file.path());
    fill(store, 5);
    last_before = *store.last();
  }
  AuditStore reopened(file.path());
  EXPECT_EQ(reopened.count(), 5u);
  EXPECT_EQ(reopened.last(), last_before);
  EXPECT_FALSE(reopened.append("evt-3", "kafka:pix.payments", "again", 5).appended);
  const AppendResult next = reopened.append("evt-6", "kafka:pix.payments", "{}", 2000);
  ASSERT_TRUE(next.appended);
  EXPECT_EQ(next.entry.seq, 6);
  EXPECT_EQ(next.entry.prev_hash, last_before.hash);
  const VerifyReport report = reopened.verify();
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.entries, 6u);
}

TEST(AuditStore, RefusesAFileOfANewerSchema) {
  TempDbFile file;
  { AuditStore store(file.path()); }
  {
    storage::Database db(file.path());
    db.exec("PRAGMA user_version = " + std::to_string(kAuditSchemaVersion + 1));
  }
  EXPECT_THROW(AuditStore{file.path()}, std::runtime_error);
}

TEST(AuditHash, MatchesAHandComputedSha256OfTheDocumentedEncoding) {
  // Expected values computed outside this code base, from the encoding in audit_store.hpp:
  //   f(){ printf '%016x' "${#1}" | xxd -r -p; printf '%s' "$1"; }
  //   { f pix-audit-v1; f 1; f evt-1; f gateway; f '{"amount":100}'; f 1700000000000; f 000...0 (64); } | sha256sum
  //   { f pix-audit-v1; f 2; f evt-2; f settlement; f ''; f 1700000000001; f <hash 1>; } | sha256sum
  // and cross-checked with Python's hashlib (the snippet in the header).
  constexpr std::string_view kHash1 = "a4da3fbc502fac2e0981ae04ca84da2b460b687d67eb09726a4271415bf324af";
  constexpr std::string_view kHash2 = "2f0a61b203a8e197b35a77de7b00359f649a80fc7acd3fd05b4dbc14bb68b0eb";

  TempDbFile file;
  AuditStore store(file.path());
  EXPECT_EQ(store.append("evt-1", "gateway", R"({"amount":100})", 1700000000000).entry.hash, kHash1);
  EXPECT_EQ(store.append("evt-2", "settlement", "", 1700000000001).entry.hash, kHash2);
}

TEST(AuditHash, LengthPrefixesKeepShiftedFieldsApart) {
  // Same concatenated bytes, split differently between source and payload.
  TempDbFile file_a;
  TempDbFile file_b;
  AuditStore a(file_a.path());
  AuditStore b(file_b.path());
  EXPECT_NE(a.append("evt", "kafka:ab", "c", 1).entry.hash, b.append("evt", "kafka:a", "bc", 1).entry.hash);
}

TEST(AuditVerify, AcceptsAGoodChainAndAnEmptyOne) {
  TempDbFile file;
  AuditStore store(file.path());
  const VerifyReport empty = store.verify();
  EXPECT_TRUE(empty.ok);
  EXPECT_EQ(empty.entries, 0u);

  fill(store, 50);
  const VerifyReport report = store.verify();
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.entries, 50u);
  EXPECT_FALSE(report.first_broken_seq.has_value());
  EXPECT_EQ(report.reason, "");
}

TEST(AuditVerify, FindsAChangedPayload) {
  TempDbFile file;
  {
    AuditStore store(file.path());
    fill(store, 10);
  }
  tamper(file.path(), R"(UPDATE entries SET payload = '{"n":4000}' WHERE seq = 4)");
  AuditStore store(file.path());
  const VerifyReport report = store.verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_broken_seq, 4);
  EXPECT_EQ(report.entries, 3u);
  EXPECT_NE(report.reason.find("hash"), std::string::npos) << report.reason;
}

TEST(AuditVerify, FindsADeletedMiddleEntry) {
  TempDbFile file;
  {
    AuditStore store(file.path());
    fill(store, 10);
  }
  tamper(file.path(), "DELETE FROM entries WHERE seq = 6");
  AuditStore store(file.path());
  const VerifyReport report = store.verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_broken_seq, 6);
  EXPECT_EQ(report.entries, 5u);
  EXPECT_NE(report.reason.find("expected seq 6"), std::string::npos) << report.reason;
}

TEST(AuditVerify, FindsADeletedFirstEntry) {
  TempDbFile file;
  {
    AuditStore store(file.path());
    fill(store, 3);
  }
  tamper(file.path(), "DELETE FROM entries WHERE seq = 1");
  AuditStore store(file.path());
  EXPECT_EQ(store.verify().first_broken_seq, 1);
}

TEST(AuditVerify, FindsAChangedPrevHash) {
  TempDbFile file;
  {
    AuditStore store(file.path());
    fill(store, 10);
  }
  tamper(file.path(), "UPDATE entries SET prev_hash = '" + std::string(64, 'f') + "' WHERE seq = 7");
  AuditStore store(file.path());
  const VerifyReport report = store.verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_broken_seq, 7);
  EXPECT_EQ(report.entries, 6u);
  EXPECT_NE(report.reason.find("prev_hash"), std::string::npos) << report.reason;
}

TEST(AuditVerify, FindsAnEntryReplacedWithAnotherEntrysHashes) {
  // A forger who copies a valid-looking hash from elsewhere in the chain is still caught.
  TempDbFile file;
  {
    AuditStore store(file.path());
    fill(store, 5);
  }
  tamper(file.path(), "UPDATE entries SET hash = (SELECT hash FROM entries WHERE seq = 2) WHERE seq = 3");
  AuditStore store(file.path());
  EXPECT_EQ(store.verify().first_broken_seq, 3);
}

TEST(AuditVerify, ReportsProgressOnLongChains) {
  TempDbFile file;
  // NORMAL keeps the 20,000 commits quick; verify() does not depend on it.
  AuditStore store(file.path(), {storage::Synchronous::kNormal, std::chrono::milliseconds(5000)});
  fill(store, 2 * static_cast<int>(kVerifyProgressEvery) + 5);
  std::vector<std::size_t> calls;
  const VerifyReport report = store.verify([&calls](std::size_t done) { calls.push_back(done); });
  EXPECT_TRUE(report.ok) << report.reason;
  EXPECT_EQ(report.entries, 2 * kVerifyProgressEvery + 5);
  EXPECT_EQ(calls, (std::vector<std::size_t>{kVerifyProgressEvery, 2 * kVerifyProgressEvery}));
}

TEST(AuditStore, KilledWithSigkillMidStreamKeepsAnIntactChainAndDedupesRedelivery) {
  TempDbFile file;
  { AuditStore create(file.path()); }

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Dies with the test process, so a test killed by a timeout leaves no writer behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The auditor stage, minus the brokers: appends events in order until it is killed.
    int code = 0;
    try {
      AuditStore store(file.path());
      for (int i = 1;; ++i) store.append(event_id(i), "kafka:pix.payments", std::string(200, 'p'), i);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child audit store failed: %s\n", e.what());
      code = 1;
    }
    _exit(code);
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  {
    AuditStore watcher(file.path());
    while (watcher.count() < 300 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child ended by itself: " << status;

  AuditStore restarted(file.path());
  const VerifyReport after_crash = restarted.verify();
  ASSERT_TRUE(after_crash.ok) << after_crash.reason;
  const auto stored = static_cast<int>(restarted.count());
  ASSERT_GE(stored, 300);
  ASSERT_EQ(after_crash.entries, static_cast<std::size_t>(stored));
  EXPECT_EQ(restarted.last()->event_id, event_id(stored));  // appended in order: a prefix survived

  // Redelivery from some way back: the old ones are recognised, the new ones continue the chain.
  for (int i = stored - 50; i <= stored + 50; ++i) {
    EXPECT_EQ(restarted.append(event_id(i), "kafka:pix.payments", std::string(200, 'p'), i).appended, i > stored);
  }
  const VerifyReport final_report = restarted.verify();
  EXPECT_TRUE(final_report.ok) << final_report.reason;
  EXPECT_EQ(final_report.entries, static_cast<std::size_t>(stored + 50));
}

}  // namespace
}  // namespace pix::audit
