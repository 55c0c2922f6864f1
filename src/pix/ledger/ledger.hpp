#pragma once
/// @file The settlement ledger: double-entry postings in SQLite, each payment posted at most once.

#include "pix/domain/payment_fingerprint.hpp"
#include "pix/storage/sqlite.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pix::ledger {

/// The system account that funding draws from. The only account allowed below zero: it holds
/// minus the money handed out, so the balances of all accounts always sum to zero.
inline constexpr std::string_view kReserveAccount = "pix:reserve";
/// ISO 20022 reason: the payer's balance does not cover the amount.
inline constexpr std::string_view kReasonInsufficientFunds = "AM04";
/// ISO 20022 reason: the amount is zero or negative.
inline constexpr std::string_view kReasonInvalidAmount = "AM01";
/// `PRAGMA user_version` of the schema this code writes.
/// ISO 20022 reason: the payment id was decided for a payment with other content (Duplication).
inline constexpr std::string_view kReasonDuplicate = domain::kReasonDuplicate;
/// `PRAGMA user_version` of the schema this code writes. A version-1 file is migrated on open
/// (its payments get an empty fingerprint, which matches any).
inline constexpr std::int64_t kLedgerSchemaVersion = 2;

/// @brief What fund() did.
struct FundingReport {
  std::size_t funded = 0;         ///< accounts opened (and credited) by this call
  std::size_t already_open = 0;   ///< listed accounts that existed and were left alone
  std::int64_t funded_cents = 0;  ///< total moved out of the reserve by this call
};

/// @brief The answer to a transfer, the same on every redelivery of the same dedupe id.
struct TransferResult {
  enum class Outcome { kSettled, kRejected };

  Outcome outcome = Outcome::kRejected;
  std::string reason_code;               ///< empty when settled; "AM04" or "AM01" when rejected
  std::int64_t payer_balance_after = 0;  ///< payer's balance once this payment was decided
  bool duplicate = false;                ///< the dedupe id was decided before: nothing was posted now
  /// The dedupe id was decided before for a payment with another fingerprint: rejected AM05,
  /// nothing posted, the first decision untouched.
  bool conflict = false;
};

/// @brief Knobs for Ledger; the defaults are what production uses.
struct LedgerOptions {
  storage::DatabaseOptions database;
  /// Test-only fault injection: called inside transfer()'s transaction after both postings and
  /// balance updates are written and before the payment record. Whatever it throws propagates,
  /// and the ledger must then look as if transfer() had never been called.
  std::function<void()> before_payment_record;
};

/// @brief A double-entry ledger of PIX accounts in one SQLite file.
///
/// Every change of balance is a pair of postings summing to zero (payer debit and receiver
/// credit, or reserve debit and account credit when funding), written in the same IMMEDIATE
/// transaction as the balances and the payment's dedupe record. So a process killed at any point
/// leaves either the whole payment or none of it, and a redelivered payment finds its record and
/// is answered from it instead of being posted again.
///
/// Durability: synchronous=FULL by default (see storage::DatabaseOptions); a transfer that
/// returned survives kill -9 and power loss, so the caller may commit its Kafka offset after it.
///
/// Errors: business outcomes are values (TransferResult). Storage failures throw
/// storage::SqliteError, a broken invariant std::logic_error, and bad operator input to fund()
/// std::invalid_argument; in all cases nothing was written.
///
/// Thread-compatible: one Ledger per thread. Queries are non-const because they step statements
/// on the single connection, which must not be shared between threads even for reading. Several
/// processes may open the same file: IMMEDIATE transactions serialize their writes.
class Ledger {
 public:
  /// Opens or creates the ledger at `path`, creating the schema and the reserve account if missing.
  /// Throws storage::SqliteError, or std::runtime_error for a file of a newer schema version.
  explicit Ledger(const std::string& path);
  Ledger(const std::string& path, LedgerOptions options);

  /// Opens each listed account that does not exist yet with the given balance, moved out of the
  /// reserve (two postings each). Existing accounts are left untouched, so calling this again
  /// funds nothing. All or nothing, in one transaction. Throws std::invalid_argument for a
  /// negative amount, an empty name, or the reserve account itself.
  FundingReport fund(const std::vector<std::pair<std::string, std::int64_t>>& accounts);

  /// Moves `amount_cents` from `payer` to `receiver`, at most once per `dedupe_id`:
  /// - `dedupe_id` already decided: its stored answer, with `duplicate = true`; nothing posted.
  /// - `amount_cents <= 0`: rejected AM01 without touching the database (a pure function of the
  ///   input, so a redelivery gets the same answer anyway; it is not counted in payment_count()).
  /// - payer's balance below the amount (a missing payer has balance 0): rejected AM04, recorded
  ///   so that a redelivery answers the same even if the payer was funded meanwhile; nothing posted.
  /// - otherwise: settled; payer debited, receiver credited (opened at 0 if missing), recorded.
  /// `payer == receiver` settles with two postings that cancel out. A redelivery with the same id
  /// gets the first answer: the stored decision is the truth. When both this call and the stored
  /// decision have a `fingerprint` and they differ, the id was reused for another payment: the
  /// answer is rejected AM05 with `conflict` set, and nothing is written.
  TransferResult transfer(std::string_view dedupe_id, std::string_view payer, std::string_view receiver,
                          std::int64_t amount_cents, std::string_view fingerprint = {});

  /// Records that the payment was rejected before settlement (by anti-fraud, with its reason), so
  /// that no later record under the same id can settle it: the first decision is the truth. Nothing
  /// is posted. Answers like transfer(): the stored decision if the id was decided before (a
  /// conflict if with another fingerprint). Throws std::invalid_argument for an empty reason.
  TransferResult record_rejection(std::string_view dedupe_id, std::string_view payer, std::string_view receiver,
                                  std::int64_t amount_cents, std::string_view reason_code,
                                  std::string_view fingerprint = {});

  /// Balance of `account`, or nullopt if it was never opened.
  std::optional<std::int64_t> balance(std::string_view account);
  /// Sum over all accounts, reserve included. Zero unless the ledger is corrupt.
  std::int64_t total_balance();
  /// Payments decided (settled, rejected AM04, or rejected before settlement), i.e. dedupe records.
  std::size_t payment_count();
  /// Postings of all kinds (funding and transfers).
  std::size_t posting_count();
  /// Every account and its balance, ordered by account id.
  std::vector<std::pair<std::string, std::int64_t>> balances();

 private:
  struct PaymentRecord {
    std::string_view dedupe_id, outcome, reason, payer, receiver;
    std::int64_t amount_cents = 0, payer_after = 0, at_ms = 0;
    std::string_view fingerprint;
  };
  void create_schema();
  std::optional<TransferResult> decided(std::string_view dedupe_id, std::string_view fingerprint);
  void record(const PaymentRecord& p);

  LedgerOptions options_;
  storage::Database db_;
};

}  // namespace pix::ledger
