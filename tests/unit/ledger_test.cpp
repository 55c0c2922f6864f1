#include "pix/ledger/ledger.hpp"

#include "pix/storage/sqlite.hpp"

#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <sqlite3.h>
#include "temp_db_file.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pix::ledger {
namespace {

using Outcome = TransferResult::Outcome;

using test::TempDbFile;

std::int64_t count(storage::Database& db, const std::string& sql) {
  storage::Statement stmt = db.prepare(sql);
  EXPECT_TRUE(stmt.step()) << sql;
  return stmt.column_int64(0);
}

/// Invariants read straight from the file through a separate connection, not through Ledger.
void expect_books_consistent(const std::string& path) {
  storage::Database db(path);
  EXPECT_EQ(count(db, "SELECT COALESCE(SUM(balance_cents), 0) FROM accounts"), 0) << "money was created or lost";
  EXPECT_EQ(count(db, "SELECT COALESCE(SUM(amount_cents), 0) FROM postings"), 0) << "postings do not balance";
  EXPECT_EQ(count(db, "SELECT COUNT(*) FROM accounts WHERE balance_cents < 0 AND id <> 'pix:reserve'"), 0)
      << "an account other than the reserve is overdrawn";
  // Each account's balance is exactly the sum of its postings.
  EXPECT_EQ(count(db,
                  "SELECT COUNT(*) FROM accounts a WHERE a.balance_cents <> "
                  "(SELECT COALESCE(SUM(p.amount_cents), 0) FROM postings p WHERE p.account = a.id)"),
            0);
  // A settled payment has exactly its two postings, summing to zero; anything else has none.
  EXPECT_EQ(
      count(db,
            "SELECT COUNT(*) FROM payments pay WHERE "
            "(SELECT COUNT(*) FROM postings p WHERE p.payment_id = pay.dedupe_id) <> "
            "CASE pay.outcome WHEN 'settled' THEN 2 ELSE 0 END "
            "OR (SELECT COALESCE(SUM(p.amount_cents), 0) FROM postings p WHERE p.payment_id = pay.dedupe_id) <> 0"),
      0);
  // No transfer posting without its payment record.
  EXPECT_EQ(count(db,
                  "SELECT COUNT(*) FROM postings p WHERE p.kind = 'transfer' AND NOT EXISTS "
                  "(SELECT 1 FROM payments pay WHERE pay.dedupe_id = p.payment_id)"),
            0);
}

TEST(LedgerFunding, OpensAccountsFromTheReserveOnce) {
  TempDbFile file;
  Ledger ledger(file.path());
  EXPECT_EQ(ledger.balance(kReserveAccount), 0);

  const FundingReport first = ledger.fund({{"alice", 1000}, {"bob", 500}});
  EXPECT_EQ(first.funded, 2u);
  EXPECT_EQ(first.already_open, 0u);
  EXPECT_EQ(first.funded_cents, 1500);
  EXPECT_EQ(ledger.balance("alice"), 1000);
  EXPECT_EQ(ledger.balance("bob"), 500);
  EXPECT_EQ(ledger.balance(kReserveAccount), -1500);
  EXPECT_EQ(ledger.total_balance(), 0);
  EXPECT_EQ(ledger.posting_count(), 4u);

  // Again, with a different amount for alice: she is left alone, only carol is new.
  const FundingReport second = ledger.fund({{"alice", 9999}, {"carol", 10}});
  EXPECT_EQ(second.funded, 1u);
  EXPECT_EQ(second.already_open, 1u);
  EXPECT_EQ(ledger.balance("alice"), 1000);
  EXPECT_EQ(ledger.balance("carol"), 10);
  EXPECT_EQ(ledger.balance(kReserveAccount), -1510);
  EXPECT_EQ(ledger.total_balance(), 0);

  const FundingReport third = ledger.fund({{"alice", 1000}, {"bob", 500}, {"carol", 10}});
  EXPECT_EQ(third.funded, 0u);
  EXPECT_EQ(third.funded_cents, 0);
  EXPECT_EQ(ledger.posting_count(), 6u);
  expect_books_consistent(file.path());
}

TEST(LedgerFunding, BadInputFundsNothing) {
  TempDbFile file;
  Ledger ledger(file.path());
  EXPECT_THROW(ledger.fund({{"alice", 100}, {"bob", -1}}), std::invalid_argument);
  EXPECT_THROW(ledger.fund({{"alice", 100}, {std::string(kReserveAccount), 5}}), std::invalid_argument);
  EXPECT_THROW(ledger.fund({{"alice", 100}, {"", 5}}), std::invalid_argument);
  EXPECT_FALSE(ledger.balance("alice").has_value());
  EXPECT_EQ(ledger.balances().size(), 1u);  // the reserve only
  EXPECT_EQ(ledger.total_balance(), 0);
}

TEST(LedgerTransfer, PostsTwoPostingsThatSumToZero) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 1000}, {"bob", 0}});
  const std::size_t postings_before = ledger.posting_count();

  const TransferResult r = ledger.transfer("pay-1", "alice", "bob", 300);
  EXPECT_EQ(r.outcome, Outcome::kSettled);
  EXPECT_EQ(r.reason_code, "");
  EXPECT_EQ(r.payer_balance_after, 700);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(ledger.balance("alice"), 700);
  EXPECT_EQ(ledger.balance("bob"), 300);
  EXPECT_EQ(ledger.posting_count(), postings_before + 2);
  EXPECT_EQ(ledger.payment_count(), 1u);

  storage::Database db(file.path());
  storage::Statement postings =
      db.prepare("SELECT account, amount_cents FROM postings WHERE payment_id = 'pay-1' ORDER BY amount_cents");
  ASSERT_TRUE(postings.step());
  EXPECT_EQ(postings.column_text(0), "alice");
  EXPECT_EQ(postings.column_int64(1), -300);
  ASSERT_TRUE(postings.step());
  EXPECT_EQ(postings.column_text(0), "bob");
  EXPECT_EQ(postings.column_int64(1), 300);
  EXPECT_FALSE(postings.step());
  expect_books_consistent(file.path());
}

TEST(LedgerTransfer, ReceiverIsOpenedAtZero) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 50}});
  EXPECT_FALSE(ledger.balance("newcomer").has_value());
  EXPECT_EQ(ledger.transfer("pay-1", "alice", "newcomer", 20).outcome, Outcome::kSettled);
  EXPECT_EQ(ledger.balance("newcomer"), 20);
  expect_books_consistent(file.path());
}

TEST(LedgerTransfer, OverdraftIsRejectedAm04WithoutPostingAndAnsweredTheSameOnRedelivery) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 100}, {"bob", 1000}});
  const std::size_t postings_before = ledger.posting_count();

  const TransferResult r = ledger.transfer("pay-over", "alice", "bob", 101);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_EQ(r.reason_code, "AM04");
  EXPECT_EQ(r.payer_balance_after, 100);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(ledger.posting_count(), postings_before);
  EXPECT_EQ(ledger.payment_count(), 1u);
  EXPECT_EQ(ledger.balance("alice"), 100);
  EXPECT_EQ(ledger.balance("bob"), 1000);

  // Alice can now afford it, but the redelivered payment keeps its first answer.
  ASSERT_EQ(ledger.transfer("pay-top-up", "bob", "alice", 500).outcome, Outcome::kSettled);
  const TransferResult again = ledger.transfer("pay-over", "alice", "bob", 101);
  EXPECT_EQ(again.outcome, Outcome::kRejected);
  EXPECT_EQ(again.reason_code, "AM04");
  EXPECT_EQ(again.payer_balance_after, 100);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(ledger.balance("alice"), 600);
  EXPECT_EQ(ledger.posting_count(), postings_before + 2);  // the top-up only
  expect_books_consistent(file.path());
}

TEST(LedgerTransfer, ExactBalanceSettlesAndOneCentMoreDoesNot) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 100}});
  EXPECT_EQ(ledger.transfer("pay-1", "alice", "bob", 100).outcome, Outcome::kSettled);
  EXPECT_EQ(ledger.balance("alice"), 0);
  const TransferResult r = ledger.transfer("pay-2", "alice", "bob", 1);
  EXPECT_EQ(r.reason_code, "AM04");
  EXPECT_EQ(r.payer_balance_after, 0);
}

TEST(LedgerTransfer, MissingPayerIsAnOverdraftAndIsNotOpened) {
  TempDbFile file;
  Ledger ledger(file.path());
  const TransferResult r = ledger.transfer("pay-1", "ghost", "bob", 1);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_EQ(r.reason_code, "AM04");
  EXPECT_EQ(r.payer_balance_after, 0);
  EXPECT_FALSE(ledger.balance("ghost").has_value());
  EXPECT_FALSE(ledger.balance("bob").has_value());
  EXPECT_EQ(ledger.posting_count(), 0u);
}

TEST(LedgerTransfer, DuplicateDedupeIdPostsOnce) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 1000}});
  const TransferResult first = ledger.transfer("pay-1", "alice", "bob", 250);
  const std::size_t postings_after_first = ledger.posting_count();

  for (int i = 0; i < 3; ++i) {
    const TransferResult again = ledger.transfer("pay-1", "alice", "bob", 250);
    EXPECT_EQ(again.outcome, Outcome::kSettled);
    EXPECT_EQ(again.payer_balance_after, first.payer_balance_after);
    EXPECT_TRUE(again.duplicate);
  }
  // Same id, different body: still the first answer, still nothing posted.
  const TransferResult altered = ledger.transfer("pay-1", "alice", "carol", 1);
  EXPECT_TRUE(altered.duplicate);
  EXPECT_EQ(altered.payer_balance_after, 750);

  EXPECT_EQ(ledger.posting_count(), postings_after_first);
  EXPECT_EQ(ledger.payment_count(), 1u);
  EXPECT_EQ(ledger.balance("alice"), 750);
  EXPECT_EQ(ledger.balance("bob"), 250);
  EXPECT_FALSE(ledger.balance("carol").has_value());
  expect_books_consistent(file.path());
}

TEST(LedgerTransfer, NonPositiveAmountIsRejectedAm01AndNotRecorded) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 1000}});
  for (const std::int64_t amount : {std::int64_t{0}, std::int64_t{-5}}) {
    const TransferResult r = ledger.transfer("pay-bad", "alice", "bob", amount);
    EXPECT_EQ(r.outcome, Outcome::kRejected);
    EXPECT_EQ(r.reason_code, "AM01");
    EXPECT_EQ(r.payer_balance_after, 1000);
    EXPECT_FALSE(r.duplicate);
  }
  EXPECT_EQ(ledger.payment_count(), 0u);
  EXPECT_EQ(ledger.balance("alice"), 1000);
  // The id was not used up: a valid payment under it settles.
  EXPECT_EQ(ledger.transfer("pay-bad", "alice", "bob", 5).outcome, Outcome::kSettled);
}

TEST(LedgerTransfer, SelfTransferSettlesAndNetsToZero) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 100}});
  const std::size_t postings_before = ledger.posting_count();
  const TransferResult r = ledger.transfer("pay-self", "alice", "alice", 60);
  EXPECT_EQ(r.outcome, Outcome::kSettled);
  EXPECT_EQ(r.payer_balance_after, 100);
  EXPECT_EQ(ledger.balance("alice"), 100);
  EXPECT_EQ(ledger.posting_count(), postings_before + 2);
  EXPECT_EQ(ledger.transfer("pay-self-2", "alice", "alice", 101).reason_code, "AM04");
  expect_books_consistent(file.path());
}

TEST(LedgerConservation, RandomMixOfFundingTransfersAndOverdraftsKeepsTheSumAtZero) {
  TempDbFile file;
  // NORMAL spares 2,000 fsyncs; what is checked here (the arithmetic) does not depend on it.
  LedgerOptions options;
  options.database.synchronous = storage::Synchronous::kNormal;
  Ledger ledger(file.path(), options);
  std::mt19937 rng(20240601);  // fixed: a failure must be reproducible
  constexpr int kAccounts = 20;
  constexpr int kTransfers = 2000;
  auto name = [](int i) { return "acct-" + std::to_string(i); };

  // Our own model of the books, to compare with the ledger's.
  std::map<std::string, std::int64_t> model;
  std::int64_t reserve = 0;
  auto fund_wave = [&](int from, int to) {
    std::vector<std::pair<std::string, std::int64_t>> wave;
    for (int i = from; i < to; ++i)
      wave.emplace_back(name(i), std::uniform_int_distribution<std::int64_t>(0, 5000)(rng));
    ledger.fund(wave);
    for (const auto& [account, amount] : wave) {
      if (model.emplace(account, amount).second) reserve -= amount;
    }
  };
  fund_wave(0, kAccounts / 2);

  std::size_t settled = 0;
  std::size_t rejected = 0;
  std::vector<std::string> decided;
  for (int i = 0; i < kTransfers; ++i) {
    if (i == kTransfers / 4) fund_wave(0, kAccounts);  // half new, half already open
    const std::string payer = name(std::uniform_int_distribution<int>(0, kAccounts - 1)(rng));
    const std::string receiver = name(std::uniform_int_distribution<int>(0, kAccounts - 1)(rng));
    const std::int64_t amount = std::uniform_int_distribution<std::int64_t>(1, 3000)(rng);

    // One in ten deliveries is a redelivery of an earlier payment: it must change nothing.
    if (!decided.empty() && i % 10 == 9) {
      const std::string& id = decided[std::uniform_int_distribution<std::size_t>(0, decided.size() - 1)(rng)];
      EXPECT_TRUE(ledger.transfer(id, payer, receiver, amount).duplicate);
    } else {
      const std::string id = "pay-" + std::to_string(i);
      const TransferResult r = ledger.transfer(id, payer, receiver, amount);
      decided.push_back(id);
      const std::int64_t payer_balance = model.count(payer) ? model[payer] : 0;
      if (payer_balance >= amount) {
        ASSERT_EQ(r.outcome, Outcome::kSettled) << id;
        model[payer] -= amount;
        model[receiver] += amount;
        ++settled;
      } else {
        ASSERT_EQ(r.outcome, Outcome::kRejected) << id;
        ASSERT_EQ(r.reason_code, "AM04") << id;
        ++rejected;
      }
      ASSERT_EQ(r.payer_balance_after, model.count(payer) ? model[payer] : 0) << id;
    }
    ASSERT_EQ(ledger.total_balance(), 0) << "after transfer " << i;
    for (const auto& [account, balance] : ledger.balances()) {
      if (account != kReserveAccount) {
        ASSERT_GE(balance, 0) << account << " after transfer " << i;
      }
    }
  }
  // The mix really exercised both paths.
  EXPECT_GT(settled, 200u);
  EXPECT_GT(rejected, 200u);
  EXPECT_EQ(ledger.payment_count(), settled + rejected);

  std::vector<std::pair<std::string, std::int64_t>> expected(model.begin(), model.end());
  expected.emplace_back(std::string(kReserveAccount), reserve);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ledger.balances(), expected);
  expect_books_consistent(file.path());
}

TEST(LedgerDurability, BooksAndDedupeRecordsSurviveReopening) {
  TempDbFile file;
  {
    Ledger ledger(file.path());
    ledger.fund({{"alice", 1000}, {"bob", 0}});
    ASSERT_EQ(ledger.transfer("pay-1", "alice", "bob", 400).outcome, Outcome::kSettled);
    ASSERT_EQ(ledger.transfer("pay-2", "alice", "bob", 4000).reason_code, "AM04");
  }
  Ledger reopened(file.path());
  EXPECT_EQ(reopened.balance("alice"), 600);
  EXPECT_EQ(reopened.balance("bob"), 400);
  EXPECT_EQ(reopened.total_balance(), 0);
  EXPECT_EQ(reopened.payment_count(), 2u);
  const TransferResult again = reopened.transfer("pay-1", "alice", "bob", 400);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.payer_balance_after, 600);
  EXPECT_EQ(reopened.transfer("pay-2", "alice", "bob", 4000).reason_code, "AM04");
  EXPECT_EQ(reopened.fund({{"alice", 1000}}).funded, 0u);
  EXPECT_EQ(reopened.balance("alice"), 600);
}

TEST(LedgerDurability, RefusesAFileOfANewerSchema) {
  TempDbFile file;
  { Ledger ledger(file.path()); }
  {
    storage::Database db(file.path());
    db.exec("PRAGMA user_version = " + std::to_string(kLedgerSchemaVersion + 1));
  }
  EXPECT_THROW(Ledger{file.path()}, std::runtime_error);
}

TEST(LedgerDuplicates, ARecordedRejectionIsTheAnswerToAnyLaterTransferUnderItsId) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 10000}});
  const auto first = ledger.record_rejection("pay-1", "alice", "bob", 500, "AM02", "v1:aa");
  EXPECT_EQ(first.outcome, Outcome::kRejected);
  EXPECT_FALSE(first.duplicate);
  const auto later = ledger.transfer("pay-1", "alice", "bob", 500, "v1:aa");
  EXPECT_EQ(later.outcome, Outcome::kRejected);
  EXPECT_EQ(later.reason_code, "AM02");
  EXPECT_TRUE(later.duplicate);
  EXPECT_EQ(ledger.balance("alice"), 10000);
  EXPECT_EQ(ledger.posting_count(), 2u) << "only the funding was posted";
  EXPECT_THROW(ledger.record_rejection("pay-2", "alice", "bob", 1, "", ""), std::invalid_argument);
  expect_books_consistent(file.path());
}

TEST(LedgerDuplicates, AnIdReusedWithAnotherFingerprintIsAm05AndChangesNothing) {
  TempDbFile file;
  Ledger ledger(file.path());
  ledger.fund({{"alice", 10000}});
  ASSERT_EQ(ledger.transfer("pay-1", "alice", "bob", 1000, "v1:aa").outcome, Outcome::kSettled);
  const auto reused = ledger.transfer("pay-1", "alice", "mallory", 9000, "v1:bb");
  EXPECT_EQ(reused.outcome, Outcome::kRejected);
  EXPECT_EQ(reused.reason_code, "AM05");
  EXPECT_TRUE(reused.conflict);
  EXPECT_EQ(ledger.balance("bob"), 1000);
  EXPECT_FALSE(ledger.balance("mallory").has_value());
  // The same payment again is still answered from its record; no fingerprint matches any.
  EXPECT_TRUE(ledger.transfer("pay-1", "alice", "bob", 1000, "v1:aa").duplicate);
  EXPECT_FALSE(ledger.transfer("pay-1", "alice", "bob", 1000).conflict);
  EXPECT_TRUE(ledger.record_rejection("pay-1", "alice", "bob", 1000, "AM02", "v1:cc").conflict);
  EXPECT_EQ(ledger.payment_count(), 1u);
  expect_books_consistent(file.path());
}

TEST(LedgerDurability, AVersion1FileIsMigratedAndItsPaymentsStillAnswer) {
  TempDbFile file;
  {
    Ledger ledger(file.path());
    ledger.fund({{"alice", 10000}});
    ledger.transfer("old-1", "alice", "bob", 700);
  }
  {
    // What version 1 wrote: the same tables without payments.fingerprint.
    storage::Database db(file.path());
    db.exec("ALTER TABLE payments DROP COLUMN fingerprint; PRAGMA user_version = 1");
  }
  Ledger migrated(file.path());
  const auto again = migrated.transfer("old-1", "alice", "bob", 700, "v1:aa");
  EXPECT_TRUE(again.duplicate) << "a payment recorded before the fingerprint existed matches any";
  EXPECT_FALSE(again.conflict);
  EXPECT_EQ(migrated.transfer("new-1", "alice", "bob", 100, "v1:bb").outcome, Outcome::kSettled);
  EXPECT_TRUE(migrated.transfer("new-1", "alice", "carol", 100, "v1:cc").conflict);
  storage::Database db(file.path());
  EXPECT_EQ(count(db, "PRAGMA user_version"), kLedgerSchemaVersion);
  expect_books_consistent(file.path());
}

TEST(LedgerAtomicity, AFailureMidTransferLeavesNothingHalfDone) {
  TempDbFile file;
  bool fail = true;
  LedgerOptions options;
  options.before_payment_record = [&fail] {
    if (fail) throw std::runtime_error("injected failure after the postings");
  };
  Ledger ledger(file.path(), options);
  ledger.fund({{"alice", 1000}});
  const std::size_t postings_before = ledger.posting_count();
  const auto balances_before = ledger.balances();

  EXPECT_THROW(ledger.transfer("pay-1", "alice", "bob", 300), std::runtime_error);
  EXPECT_EQ(ledger.balances(), balances_before);  // no debit, and bob was not opened
  EXPECT_EQ(ledger.posting_count(), postings_before);
  EXPECT_EQ(ledger.payment_count(), 0u);
  expect_books_consistent(file.path());

  // The redelivery after the failure settles it, once.
  fail = false;
  EXPECT_FALSE(ledger.transfer("pay-1", "alice", "bob", 300).duplicate);
  EXPECT_TRUE(ledger.transfer("pay-1", "alice", "bob", 300).duplicate);
  EXPECT_EQ(ledger.balance("alice"), 700);
  EXPECT_EQ(ledger.posting_count(), postings_before + 2);
  expect_books_consistent(file.path());
}

TEST(LedgerAtomicity, BusyDatabaseFailsTheTransferLoudlyAndWritesNothing) {
  TempDbFile file;
  LedgerOptions impatient;
  impatient.database.busy_timeout = std::chrono::milliseconds(50);
  Ledger ledger(file.path(), impatient);
  ledger.fund({{"alice", 1000}});
  storage::Database other(file.path());
  {
    storage::Transaction hold(other);  // another writer holds the lock past our busy timeout
    try {
      ledger.transfer("pay-1", "alice", "bob", 300);
      ADD_FAILURE() << "transfer succeeded while another connection held the write lock";
    } catch (const storage::SqliteError& e) {
      EXPECT_EQ(e.primary_code(), SQLITE_BUSY) << e.what();
    }
  }
  EXPECT_EQ(ledger.payment_count(), 0u);
  EXPECT_EQ(ledger.balance("alice"), 1000);
  // Once the lock is free the redelivery goes through, once.
  EXPECT_FALSE(ledger.transfer("pay-1", "alice", "bob", 300).duplicate);
  EXPECT_EQ(ledger.balance("alice"), 700);
  expect_books_consistent(file.path());
}

// Deterministic stream of payments, the same in the killed child and in the checking parent.
struct Payment {
  std::string id;
  std::string payer;
  std::string receiver;
  std::int64_t amount;
};

Payment payment_number(int i) {
  std::mt19937 rng(static_cast<std::mt19937::result_type>(i) * 2654435761u);
  return {"pay-" + std::to_string(i), "acct-" + std::to_string(rng() % 8), "acct-" + std::to_string(rng() % 8),
          static_cast<std::int64_t>(rng() % 900) + 1};
}

std::vector<std::pair<std::string, std::int64_t>> opening_balances() {
  std::vector<std::pair<std::string, std::int64_t>> out;
  out.reserve(8);
  for (int i = 0; i < 8; ++i) out.emplace_back("acct-" + std::to_string(i), 5000);
  return out;
}

TEST(LedgerAtomicity, KilledWithSigkillMidStreamThenRedeliveredPostsEachPaymentOnce) {
  TempDbFile file;
  { Ledger(file.path()).fund(opening_balances()); }

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Dies with the test process, so a test killed by a timeout leaves no writer behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The settlement stage, minus Kafka: posts payments in order until it is killed.
    int code = 0;
    try {
      Ledger ledger(file.path());
      for (int i = 0;; ++i) {
        const Payment p = payment_number(i);
        ledger.transfer(p.id, p.payer, p.receiver, p.amount);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child ledger failed: %s\n", e.what());
      code = 1;
    }
    _exit(code);
  }

  // Kill it once it is well into the stream (and so most likely inside a transaction).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  {
    storage::Database watcher(file.path());
    while (count(watcher, "SELECT COUNT(*) FROM payments") < 300 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child ended by itself: " << status;

  expect_books_consistent(file.path());
  std::int64_t decided = 0;
  {
    storage::Database db(file.path());
    decided = count(db, "SELECT COUNT(*) FROM payments");
    ASSERT_GE(decided, 300);
    // Payments were posted in order, so what survived is exactly a prefix of the stream.
    for (std::int64_t i = 0; i < decided; ++i) {
      ASSERT_EQ(count(db, "SELECT COUNT(*) FROM payments WHERE dedupe_id = 'pay-" + std::to_string(i) + "'"), 1);
    }
  }

  // Restart: Kafka redelivers from the last committed offset, some way behind the crash.
  const int stream_end = static_cast<int>(decided) + 200;
  {
    Ledger restarted(file.path());
    for (int i = static_cast<int>(decided) - 50; i < stream_end; ++i) {
      const Payment p = payment_number(i);
      const TransferResult r = restarted.transfer(p.id, p.payer, p.receiver, p.amount);
      EXPECT_EQ(r.duplicate, i < decided) << p.id;
    }
  }
  expect_books_consistent(file.path());

  // The books equal those of a process that was never killed.
  TempDbFile clean_file;
  Ledger clean(clean_file.path());
  clean.fund(opening_balances());
  for (int i = 0; i < stream_end; ++i) {
    const Payment p = payment_number(i);
    clean.transfer(p.id, p.payer, p.receiver, p.amount);
  }
  Ledger crashed(file.path());
  EXPECT_EQ(crashed.balances(), clean.balances());
  EXPECT_EQ(crashed.payment_count(), clean.payment_count());
  EXPECT_EQ(crashed.posting_count(), clean.posting_count());
}

}  // namespace
}  // namespace pix::ledger
