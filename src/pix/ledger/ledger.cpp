#include "pix/ledger/ledger.hpp"

#include <chrono>
#include <limits>
#include <stdexcept>

namespace pix::ledger {
namespace {

using storage::Statement;
using storage::Transaction;

constexpr std::string_view kOutcomeSettled = "settled";
constexpr std::string_view kOutcomeRejected = "rejected";
constexpr std::string_view kKindFunding = "funding";
constexpr std::string_view kKindTransfer = "transfer";

// The CHECK on accounts repeats the overdraft rule in the database, so that a bug in this file
// fails the transaction instead of committing a negative balance. The triggers keep postings and
// payments append-only against accidents (not against someone with write access to the file).
std::string schema_sql() {
  std::string reserve(kReserveAccount);
  return R"sql(
CREATE TABLE accounts (
  id            TEXT PRIMARY KEY NOT NULL,
  balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0 OR id = ')sql" +
         reserve + R"sql('),
  created_at_ms INTEGER NOT NULL
);
CREATE TABLE payments (
  dedupe_id           TEXT PRIMARY KEY NOT NULL,
  outcome             TEXT NOT NULL CHECK (outcome IN ('settled', 'rejected')),
  reason_code         TEXT NOT NULL,
  payer               TEXT NOT NULL,
  receiver            TEXT NOT NULL,
  amount_cents        INTEGER NOT NULL,
  payer_balance_after INTEGER NOT NULL,
  posted_at_ms        INTEGER NOT NULL,
  fingerprint         TEXT NOT NULL DEFAULT ''
);
CREATE TABLE postings (
  id           INTEGER PRIMARY KEY,
  payment_id   TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('funding', 'transfer')),
  account      TEXT NOT NULL REFERENCES accounts (id),
  amount_cents INTEGER NOT NULL,
  posted_at_ms INTEGER NOT NULL
);
CREATE INDEX postings_by_payment ON postings (payment_id);
CREATE TRIGGER postings_append_only_update BEFORE UPDATE ON postings
  BEGIN SELECT RAISE(ABORT, 'postings are append-only'); END;
CREATE TRIGGER postings_append_only_delete BEFORE DELETE ON postings
  BEGIN SELECT RAISE(ABORT, 'postings are append-only'); END;
CREATE TRIGGER payments_append_only_update BEFORE UPDATE ON payments
  BEGIN SELECT RAISE(ABORT, 'payments are append-only'); END;
CREATE TRIGGER payments_append_only_delete BEFORE DELETE ON payments
  BEGIN SELECT RAISE(ABORT, 'payments are append-only'); END;
)sql";
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::int64_t> read_balance(storage::Database& db, std::string_view account) {
  Statement stmt = db.prepare("SELECT balance_cents FROM accounts WHERE id = ?");
  stmt.bind_text(1, account);
  if (!stmt.step()) return std::nullopt;
  return stmt.column_int64(0);
}

void write_balance(storage::Database& db, std::string_view account, std::int64_t balance_cents) {
  Statement stmt = db.prepare("UPDATE accounts SET balance_cents = ? WHERE id = ?");
  stmt.bind_int64(1, balance_cents).bind_text(2, account);
  stmt.run();
  if (db.changes() != 1)
    throw std::logic_error("ledger: account " + std::string(account) + " vanished mid-transaction");
}

void open_account(storage::Database& db, std::string_view account, std::int64_t balance_cents, std::int64_t at_ms) {
  Statement stmt = db.prepare("INSERT INTO accounts (id, balance_cents, created_at_ms) VALUES (?, ?, ?)");
  stmt.bind_text(1, account).bind_int64(2, balance_cents).bind_int64(3, at_ms);
  stmt.run();
}

void write_posting(Statement& insert, std::string_view payment_id, std::string_view kind, std::string_view account,
                   std::int64_t amount_cents, std::int64_t at_ms) {
  insert.reset();
  insert.bind_text(1, payment_id).bind_text(2, kind).bind_text(3, account).bind_int64(4, amount_cents);
  insert.bind_int64(5, at_ms);
  insert.run();
}

Statement prepare_posting(storage::Database& db) {
  return db.prepare(
      "INSERT INTO postings (payment_id, kind, account, amount_cents, posted_at_ms) VALUES (?, ?, ?, ?, ?)");
}

// Balances stay far from the int64 range in practice; these guard the ledger's arithmetic so an
// absurd input can only fail, never wrap around.
std::optional<std::int64_t> checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

std::size_t count_rows(storage::Database& db, const char* sql) {
  Statement stmt = db.prepare(sql);
  stmt.step();
  return static_cast<std::size_t>(stmt.column_int64(0));
}

}  // namespace

Ledger::Ledger(const std::string& path) : Ledger(path, LedgerOptions{}) {}

Ledger::Ledger(const std::string& path, LedgerOptions options)
    : options_(std::move(options)), db_(path, options_.database) {
  create_schema();
}

void Ledger::create_schema() {
  // Inside the write lock, so two processes opening a fresh file do not both create it.
  Transaction tx(db_);
  const std::int64_t version = db_.user_version();
  if (version > kLedgerSchemaVersion) {
    throw std::runtime_error("ledger schema version " + std::to_string(version) + " is newer than this program's " +
                             std::to_string(kLedgerSchemaVersion));
  }
  if (version == kLedgerSchemaVersion) return;  // the transaction rolls back: nothing was written
  if (version == 0) {
    db_.exec(schema_sql());
    open_account(db_, kReserveAccount, 0, now_ms());
  } else {
    // 1 -> 2: payments remember what they were (payments recorded before have none: '').
    db_.exec("ALTER TABLE payments ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''");
  }
  db_.exec("PRAGMA user_version = " + std::to_string(kLedgerSchemaVersion));
  tx.commit();
}

FundingReport Ledger::fund(const std::vector<std::pair<std::string, std::int64_t>>& accounts) {
  for (const auto& [account, amount] : accounts) {
    if (account.empty()) throw std::invalid_argument("ledger: cannot fund an account with an empty name");
    if (account == kReserveAccount) throw std::invalid_argument("ledger: the reserve account cannot be funded");
    if (amount < 0) throw std::invalid_argument("ledger: negative funding for " + account);
  }

  FundingReport report;
  const std::int64_t at_ms = now_ms();
  Transaction tx(db_);
  std::int64_t reserve = read_balance(db_, kReserveAccount).value_or(0);
  Statement insert_posting = prepare_posting(db_);
  for (const auto& [account, amount] : accounts) {
    if (read_balance(db_, account).has_value()) {
      ++report.already_open;
      continue;
    }
    // The reserve's balance is minus everything handed out, so it is the one that can overflow.
    const auto next_reserve = checked_add(reserve, -amount);
    if (!next_reserve || *next_reserve == std::numeric_limits<std::int64_t>::min()) {
      throw std::invalid_argument("ledger: funding " + account + " would overflow the reserve");
    }
    reserve = *next_reserve;
    open_account(db_, account, amount, at_ms);
    if (amount > 0) {
      const std::string entry = "funding:" + account;
      write_posting(insert_posting, entry, kKindFunding, kReserveAccount, -amount, at_ms);
      write_posting(insert_posting, entry, kKindFunding, account, amount, at_ms);
    }
    ++report.funded;
    report.funded_cents += amount;
  }
  write_balance(db_, kReserveAccount, reserve);
  tx.commit();
  return report;
}

std::optional<TransferResult> Ledger::decided(std::string_view dedupe_id, std::string_view fingerprint) {
  Statement seen =
      db_.prepare("SELECT outcome, reason_code, payer_balance_after, fingerprint FROM payments WHERE dedupe_id = ?");
  seen.bind_text(1, dedupe_id);
  if (!seen.step()) return std::nullopt;
  const std::string first = seen.column_text(3);
  if (!first.empty() && !fingerprint.empty() && first != fingerprint) {
    // The id was decided for another payment: this one is refused, the first stays as it was.
    return TransferResult{TransferResult::Outcome::kRejected, std::string(kReasonDuplicate), seen.column_int64(2),
                          false, true};
  }
  const bool settled = seen.column_text(0) == kOutcomeSettled;
  return TransferResult{settled ? TransferResult::Outcome::kSettled : TransferResult::Outcome::kRejected,
                        seen.column_text(1), seen.column_int64(2), true, false};
}

void Ledger::record(const PaymentRecord& p) {
  Statement insert = db_.prepare(
      "INSERT INTO payments (dedupe_id, outcome, reason_code, payer, receiver, amount_cents, payer_balance_after, "
      "posted_at_ms, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert.bind_text(1, p.dedupe_id).bind_text(2, p.outcome).bind_text(3, p.reason).bind_text(4, p.payer);
  insert.bind_text(5, p.receiver).bind_int64(6, p.amount_cents).bind_int64(7, p.payer_after);
  insert.bind_int64(8, p.at_ms).bind_text(9, p.fingerprint);
  insert.run();
}

TransferResult Ledger::transfer(std::string_view dedupe_id, std::string_view payer, std::string_view receiver,
                                std::int64_t amount_cents, std::string_view fingerprint) {
  if (amount_cents <= 0) {
    return {TransferResult::Outcome::kRejected, std::string(kReasonInvalidAmount), balance(payer).value_or(0), false};
  }

  const std::int64_t at_ms = now_ms();
  Transaction tx(db_);
  // Decided before: nothing is written, and tx's rollback on return just releases the write lock.
  if (auto first = decided(dedupe_id, fingerprint)) return *first;

  PaymentRecord rec{dedupe_id, kOutcomeRejected, kReasonInsufficientFunds, payer, receiver, amount_cents, 0,
                    at_ms,     fingerprint};
  const std::int64_t payer_before = read_balance(db_, payer).value_or(0);
  if (payer_before < amount_cents) {
    rec.payer_after = payer_before;
    record(rec);
    tx.commit();
    return {TransferResult::Outcome::kRejected, std::string(kReasonInsufficientFunds), payer_before, false};
  }

  // A payment to oneself is posted (both legs) but leaves the balance where it was.
  const std::int64_t payer_after = payer == receiver ? payer_before : payer_before - amount_cents;
  if (payer != receiver) {
    // Conservation bounds the receiver: its balance plus the payer's is at most minus the
    // reserve's, so this only fails if the ledger was corrupted from outside.
    const std::optional<std::int64_t> receiver_before = read_balance(db_, receiver);
    const auto receiver_after = checked_add(receiver_before.value_or(0), amount_cents);
    if (!receiver_after) throw std::logic_error("ledger: balance of " + std::string(receiver) + " would overflow");
    if (!receiver_before) open_account(db_, receiver, 0, at_ms);
    write_balance(db_, payer, payer_after);
    write_balance(db_, receiver, *receiver_after);
  }
  Statement insert_posting = prepare_posting(db_);
  write_posting(insert_posting, dedupe_id, kKindTransfer, payer, -amount_cents, at_ms);
  write_posting(insert_posting, dedupe_id, kKindTransfer, receiver, amount_cents, at_ms);
  if (options_.before_payment_record) options_.before_payment_record();
  rec.outcome = kOutcomeSettled;
  rec.reason = "";
  rec.payer_after = payer_after;
  record(rec);
  tx.commit();
  return {TransferResult::Outcome::kSettled, "", payer_after, false};
}

TransferResult Ledger::record_rejection(std::string_view dedupe_id, std::string_view payer, std::string_view receiver,
                                        std::int64_t amount_cents, std::string_view reason_code,
                                        std::string_view fingerprint) {
  if (reason_code.empty()) throw std::invalid_argument("ledger: a rejection needs a reason code");
  Transaction tx(db_);
  if (auto first = decided(dedupe_id, fingerprint)) return *first;
  const std::int64_t payer_balance = read_balance(db_, payer).value_or(0);
  record(
      {dedupe_id, kOutcomeRejected, reason_code, payer, receiver, amount_cents, payer_balance, now_ms(), fingerprint});
  tx.commit();
  return {TransferResult::Outcome::kRejected, std::string(reason_code), payer_balance, false};
}

std::optional<std::int64_t> Ledger::balance(std::string_view account) {
  return read_balance(db_, account);
}

std::int64_t Ledger::total_balance() {
  Statement stmt = db_.prepare("SELECT COALESCE(SUM(balance_cents), 0) FROM accounts");
  stmt.step();
  return stmt.column_int64(0);
}

std::size_t Ledger::payment_count() {
  return count_rows(db_, "SELECT COUNT(*) FROM payments");
}

std::size_t Ledger::posting_count() {
  return count_rows(db_, "SELECT COUNT(*) FROM postings");
}

std::vector<std::pair<std::string, std::int64_t>> Ledger::balances() {
  std::vector<std::pair<std::string, std::int64_t>> out;
  Statement stmt = db_.prepare("SELECT id, balance_cents FROM accounts ORDER BY id");
  while (stmt.step()) out.emplace_back(stmt.column_text(0), stmt.column_int64(1));
  return out;
}

}  // namespace pix::ledger
