#pragma once
/// @file Realistic `pix.payment.requested` traffic between the simulator's accounts: skewed
/// amounts with the 2025 mean ticket, a chosen share of payments that break an anti-fraud rule on
/// purpose, and client retries.
///
/// **Amounts.** A mix of two lognormals, truncated to [R$ 0.01, R$ 14,999.99] (a draw above is
/// drawn again, so the R$ 15,000.00 per-transaction limit is only crossed on purpose):
///   - 85% everyday payments (person to person, shops): median R$ 40.00, sigma 1.2, mean R$ 82;
///     91% of them are under R$ 200 (the BCB counted 93% of P2P payments under R$ 200 in 2022);
///   - 15% larger ones (rent, bills, business): median R$ 2,080.00, sigma 0.6, mean R$ 2,490.
/// Overall mean R$ 443 (the 2025 mean ticket), median about R$ 52. Measured over 100,000
/// payments (seed 42, daytime, 1,000 accounts at 10/s): mean R$ 442.20, median R$ 51.95,
/// p90 R$ 1,619.91, p99 R$ 5,087.98, max R$ 14,573.73, 77.5% under R$ 200. A single lognormal
/// with that mean (median R$ 60, sigma 2.08) has a longer tail (p99 R$ 7,900), which would make
/// the velocity budget below bind three times as often.
///
/// **Safe for the demo ledger and the default anti-fraud rules** (20 payments or R$ 20,000.00 per
/// payer in 10 minutes; R$ 1,000.00 per payment for individuals at night; R$ 50,000.00 per
/// account at the start). Within the bound below every rule-abiding payment is approved; only the
/// rule-breaking share is rejected.
///   - `velocity_count`: payers take turns. Requests are dealt in rounds of N (the population),
///     each round a fresh shuffle of all N accounts, so in any k consecutive requests no account
///     pays more than ceil(k / N) + 1 times. The rule cannot trip while at most 19 x N requests
///     are sent in any 10 minutes (velocity_safe_requests()): at N = 1000, 31 payments/s
///     sustained, or 300/s for a one-minute run (18,000). For a sustained rate R per second use
///     N >= 32 x R (10,000 accounts for 300/s, 100,000 for 3,000/s). Past the bound, about
///     (600 x R / N - 20) payments per payer and window are rejected AM02.
///   - `velocity_sum`: each payer keeps a budget, as a bank's app shows the limit left. A payment
///     is drawn so that it and the payer's own payments of the last 11 minutes (the 10-minute
///     window and a minute for the time between making a payment and its judging) total at most
///     R$ 20,000.00; a draw over the budget is drawn again, then cut to it. Within the count bound
///     the rule then cannot trip. The budget binds only when a payer makes many payments in the
///     window (measured at N = 1000, three seeds): never at 5 payments per payer and window,
///     for 0.02% of payments at 10 (mean -0.3%), 0.15% at 18 (mean -1.2%, the cut payments being
///     the large ones), 0.19% at 19 (mean -1.4%); left alone, the rule would have rejected about
///     as many. This reads the clock (PaymentOptions::clock) and costs about 230 bytes per
///     account.
///   - Night: from 20:00 to 06:00 in Sao Paulo (and 2 minutes before, for requests in flight),
///     individuals' payments are drawn from the everyday payments only, under R$ 1,000.00, so
///     the night limit does not trip by accident (see `night_aware`).
///   - Balances: receivers are uniform, so each account's balance is a random walk with zero
///     drift; after r rounds (r payments per account) its change has a standard deviation of
///     about R$ 1,560 x sqrt(r) (R$ 11,013 after 50 rounds, measured). From R$ 50,000.00 an
///     overdraft (AM04 at settlement) is then a 4.5-sigma event: within 50 rounds (50,000
///     payments at N = 1000) the odds that any account overdraws are about 1 in 150 (the unit
///     test's 50 rounds over 400 accounts bottom out at R$ 15,253.42); past ~100 rounds an
///     occasional AM04 appears. The ledger keeps balances between runs, so they add up.
/// The bounds hold per run: back-to-back runs within 10 minutes add up in the velocity window,
/// and a rules file that lowers the limits lowers them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "pix/sim/key_generator.hpp"
#include "pix/sim/request_source.hpp"

namespace pix::sim {

/// @brief How make_payment_source() generates payments.
struct PaymentOptions {
  /// Accounts pix-0001 ... pix-<population>; settlement must fund them (`--population`). >= 2.
  std::size_t population = 1000;
  /// Drives the population's keys and every choice below: the same options give the same requests.
  std::uint64_t seed = 42;
  /// Share of the fresh (non-retry) payments that break one rule on purpose, the four rules in
  /// equal parts: amount 0.00 (AM01 positive_amount), over R$ 15,000.00 (AM02
  /// per_transaction_limit), an invalid receiverKey (AC03 receiver_key), an amount with 3 decimals
  /// (ED05 amount_format). Each is rejected by anti-fraud and moves no money.
  double rule_breaking_share = 0.05;
  /// Share of all requests that repeat an earlier request (one of the previous 50) byte for byte,
  /// with the same Idempotency-Key: a client retrying after a timeout. The gateway answers them
  /// from its idempotency memory and publishes nothing. Without `idempotency_keys` they are real
  /// duplicates (same transactionId, new event id): each is judged and settled again, which is
  /// what the keys are for, and the velocity bound above no longer holds.
  double retry_share = 0.0;
  /// Every payment carries an Idempotency-Key (the same text as its transactionId).
  bool idempotency_keys = true;
  /// "/kafka" (endpoint 0, api-kafka; the saga consumes from Kafka) or "/rabbit" (endpoint 1).
  std::string target = "/kafka";
  /// Prefix of transactionIds and Idempotency-Keys: "<run_id>-<seq>". Empty: "sim<seed>". Two runs
  /// with the same seed and run id send the same keys: within the gateway's idempotency window
  /// they are answered as replays and publish nothing, and the saga's stages, which remember event
  /// ids, would take them for redeliveries. Give each run its own id (e.g. from the clock).
  std::string run_id;
  /// Keep individuals' payments under the night limit when the request is made at night in Sao
  /// Paulo, as their bank's app would. The requests then depend on the time of day; turn it off
  /// for traffic that depends on the seed alone.
  bool night_aware = true;
  /// The clock the source reads, once per request: for `night_aware` and for the payers' velocity
  /// budgets. Empty means std::chrono::system_clock::now. Tests fix it.
  std::function<std::chrono::system_clock::time_point()> clock;
};

/// Labels of the requests (RequestSpec::label), to count them apart.
inline constexpr std::string_view kLabelPayment = "payment";
inline constexpr std::string_view kLabelZeroAmount = "breaks AM01";     ///< amount "0.00"
inline constexpr std::string_view kLabelOverLimit = "breaks AM02";      ///< amount over R$ 15,000.00
inline constexpr std::string_view kLabelInvalidKey = "breaks AC03";     ///< receiverKey not a valid key
inline constexpr std::string_view kLabelThreeDecimals = "breaks ED05";  ///< amount like "12.345"
inline constexpr std::string_view kLabelRetry = "retry";

/// Largest amount a generated (rule-abiding) payment has: the default per-transaction limit less a
/// centavo. Draws above it are drawn again.
inline constexpr std::int64_t kMaxGeneratedCents = 1'499'999;

/// How many earlier requests a retry may repeat: the last 50 (a client retries soon).
inline constexpr std::uint64_t kRetryLookback = 50;

/// @brief One amount from the model above, in centavos. `individual_at_night`: from the everyday
/// payments only, and at most R$ 1,000.00.
std::int64_t draw_amount_cents(Rng& rng, bool individual_at_night);

/// @brief The most requests that may be sent in any 10 minutes without any account making more
/// than 20 payments in them: 19 x population (see the file comment).
std::size_t velocity_safe_requests(std::size_t population) noexcept;

/// @brief "sim<seed>", the run id when none is given.
std::string default_run_id(std::uint64_t seed);

/// @brief The payments source. Request `seq` is
/// `{"topic":"pix.payment.requested","value":{"transactionId":"<run>-<seq>","amount":"123.45",
/// "payer":"pix-0042","receiver":"pix-0777","payerType":"PF","payerKey":"...","receiverKey":"..."}}`
/// (`payerKey`, the payer's own key, in half of them); payer != receiver; receiverKey is the
/// receiver's key (or an invalid one, for AC03); payerType "PJ" for companies. Each request is
/// made from `seq` and the options; the clock only matters at night (`night_aware`) and for a
/// payer near its velocity budget, which also depends on the payer's earlier requests. With a
/// fixed clock and seqs asked in increasing order (as the load engine does) the traffic is the
/// same every time. A retry repeats the bytes this source produced for the earlier seq. Copies
/// of the source are independent; one copy must not be called from two threads at once.
/// @throws std::invalid_argument for a population under 2, a share outside [0, 1] or a target
/// other than "/kafka" and "/rabbit".
RequestSource make_payment_source(const PaymentOptions& options);

/// @brief The options in one line, for printing before a run; includes the velocity-safe rate.
std::string describe(const PaymentOptions& options);

}  // namespace pix::sim
