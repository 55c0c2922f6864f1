#pragma once
/// @file The anti-fraud stage of the payment saga: judges each `pix.payment.requested` event and
/// says whether it is validated or rejected, with an SPI reason code.

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "pix/domain/amount.hpp"
#include "pix/domain/end_to_end_id.hpp"
#include "pix/domain/payment_fingerprint.hpp"

namespace pix::antifraud {

/// @brief The limits and lists the rules apply. Defaults follow the BCB rules for individuals.
struct RulesConfig {
  /// The most a single payment may move: R$ 15,000.00, the BCB cap (Sep 2025) for institutions
  /// connected through a third-party provider.
  std::int64_t per_transaction_limit_cents = 1'500'000;

  /// The most an individual (PF) may pay in one payment at night: R$ 1,000.00. Companies (PJ) are
  /// exempt, as in the BCB rule.
  std::int64_t night_limit_cents = 100'000;
  /// Night is [night_start_hour, night_end_hour) local time, wrapping past midnight when start >
  /// end (20:00-06:00 by default; 22 is the other start the BCB allows). Equal hours: no night.
  int night_start_hour = 20;
  int night_end_hour = 6;
  /// Local time = UTC + this. America/Sao_Paulo has kept UTC-3 all year since Brazil abolished
  /// daylight saving time in 2019, so a fixed offset is exact and needs no time-zone database.
  int utc_offset_minutes = -180;

  /// Velocity: at most `velocity_max_count` approved payments and `velocity_max_sum_cents`
  /// (R$ 20,000.00) per payer in any `velocity_window` ending at a payment.
  std::chrono::seconds velocity_window{std::chrono::minutes(10)};
  std::size_t velocity_max_count = 20;
  std::int64_t velocity_max_sum_cents = 2'000'000;

  /// Payer or receiver account ids, or PIX keys, that may not pay or be paid. A CPF or CNPJ key
  /// matches with or without its punctuation.
  std::set<std::string, std::less<>> blocked;

  /// How many event ids the engine remembers, so that a redelivered event gets its first decision
  /// back. 0 turns the memory off.
  std::size_t dedupe_capacity = 100'000;

  /// The ISPB that endToEndIds are made under when the request brings none.
  std::string ispb = std::string(domain::kDemoIspb);
};

/// @brief Outcome of load_rules_config(): exactly one of `config` and `error` is set.
struct RulesConfigParse {
  std::optional<RulesConfig> config;
  std::string error;  ///< names the field, e.g. "night_limit: more than 2 decimal places"

  explicit operator bool() const noexcept { return config.has_value(); }
};

/// @brief Reads a rules file: a JSON object whose fields are all optional and default as in
/// RulesConfig.
///
/// Fields: `per_transaction_limit`, `night_limit`, `velocity_max_sum` (amounts in reais, "15000.00"
/// or 15000); `night_start_hour`, `night_end_hour` (0-23); `utc_offset_minutes`;
/// `velocity_window_seconds`, `velocity_max_count` (> 0); `blocked` (array of strings);
/// `dedupe_capacity`; `ispb`. An unknown field is an error: a typo must not leave a limit at its
/// default unnoticed.
RulesConfigParse load_rules_config(std::string_view json_text);

/// @brief Who pays: an individual (PF, the default) or a company (PJ). Only individuals have the
/// night limit.
enum class PayerType { kIndividual, kCompany };

/// @brief What the rules need to know about one `pix.payment.requested` event.
struct PaymentRequest {
  std::string event_id;  ///< the envelope's id: the same on every redelivery
  std::string transaction_id;
  domain::AmountParse amount;  ///< may hold an error: the engine rejects it with ED05 / AM01
  std::string payer;           ///< the payer's account id
  std::string receiver;        ///< the receiver's account id
  std::optional<std::string> payer_key;
  std::optional<std::string> receiver_key;
  PayerType payer_type = PayerType::kIndividual;
  std::optional<std::string> end_to_end_id;  ///< as sent; replaced by a made one if not valid
  /// When the payer asked: the limits are judged at this time, not when the event is processed.
  std::chrono::system_clock::time_point event_time;
  /// domain::payment_fingerprint() of the event's value; "" when unknown (no duplicate check).
  std::string fingerprint;
};

/// @brief Extracts and type-checks a request from the event's `value` object.
///
/// Required: `transactionId` (string or integer), `payer`, `receiver` (non-empty strings).
/// Optional (null is absent): `amount`, `payerKey`, `receiverKey` (strings), `payerType` ("PF" or
/// "PJ"), `endToEndId` (string). A bad amount is not an error here: it is kept in `amount` for the
/// engine to reject with a reason; a key is only type-checked here, its validity is a rule.
/// Returns a message naming the field when the event cannot be judged at all.
std::variant<PaymentRequest, std::string> payment_request_from_json(const boost::json::object& value,
                                                                    std::string event_id,
                                                                    std::chrono::system_clock::time_point event_time);

/// SPI reason codes (pacs.002 RJCT) the engine answers with.
inline constexpr std::string_view kCodeZeroAmount = "AM01";
inline constexpr std::string_view kCodeOverLimit = "AM02";
inline constexpr std::string_view kCodeInvalidAccount = "AC03";
inline constexpr std::string_view kCodeBlocked = "AC06";
inline constexpr std::string_view kCodeGeneric = "ED05";
/// A payment id already decided for a payment with other content (domain::kReasonDuplicate).
inline constexpr std::string_view kCodeDuplicate = domain::kReasonDuplicate;
/// The rule name of that rejection.
inline constexpr std::string_view kRuleDuplicate = "duplicate";

/// @brief The verdict on one request.
struct Decision {
  bool approved = false;
  std::string code;               ///< SPI reason code; "" when approved
  std::string rule;               ///< which rule rejected, e.g. "night_limit"; "" when approved
  std::string message;            ///< for a human; "" when approved
  std::int64_t amount_cents = 0;  ///< 0 when the amount did not parse
  std::string end_to_end_id;      ///< always set, approved or not

  friend bool operator==(const Decision&, const Decision&) = default;
};

/// @brief Applies the rules, in this order; the first that fails decides:
///   1. `amount_format`   ED05  amount missing, not a number, > 2 decimals, too large
///   2. `positive_amount` AM01  zero or negative
///   3. `blocked`         AC06  payer, receiver or either key is in RulesConfig::blocked
///   4. `payer_key`, `receiver_key`  AC03  a key that is given but not a valid PIX key
///   5. `per_transaction_limit`      AM02
///   6. `night_limit`     AM02  individuals only, judged at the request's local time
///   7. `velocity_count`, then `velocity_sum`  AM02  the payer's approved payments in the window
/// Paying oneself is allowed: PIX moves money between one's own accounts at different PSPs.
///
/// Only approved payments count toward velocity. The window is judged on event times, so a
/// backlog is judged as it happened; a payment that arrives out of order also counts the payer's
/// approved payments with later times (erring toward rejection). A redelivered event (same non-empty event id)
/// gets its first decision back and counts once; the same event id with another fingerprint is
/// rejected AM05 (`duplicate`), counts nothing and leaves the first decision as it was. Not thread-safe: use one engine
/// per consumer thread (partition the topic by payer if velocity must see all of a payer's payments).
class RuleEngine {
 public:
  using Clock = std::chrono::system_clock;

  explicit RuleEngine(RulesConfig config);

  /// Judges `request`. `now` is the consumer's clock: it stands in for an event time that is
  /// missing (at or before the epoch, e.g. Kafka's -1) or in the future (a sender's clock running
  /// ahead). With no event time, a made endToEndId carries `now`'s minute, so it is stable across
  /// redeliveries only while the event id is remembered.
  Decision evaluate(const PaymentRequest& request, Clock::time_point now);

  /// Takes in a decision made before (by this engine or another replica, read back from the
  /// output topic): the event id gets it back on redelivery, and an approval joins the payer's
  /// velocity window at `judged_at` (the time the limits were judged at). A decision for an
  /// event id already remembered is ignored: the first one stands.
  void restore(const PaymentRequest& request, const Decision& decision, Clock::time_point judged_at);

  /// True if `decision` is the AM05 answer to a reused event id.
  static bool is_duplicate(const Decision& decision) noexcept { return decision.rule == kRuleDuplicate; }

  /// The config as applied: `blocked` also holds the bare form of punctuated CPF/CNPJ entries.
  const RulesConfig& config() const noexcept { return config_; }
  /// Payers with payments still inside the velocity window (memory use, for metrics and tests).
  std::size_t tracked_payers() const noexcept { return velocity_.size(); }
  /// Event ids whose decision is remembered.
  std::size_t remembered_events() const noexcept { return decisions_.size(); }

 private:
  struct Payment {
    Clock::time_point at;
    std::int64_t cents = 0;
  };
  // A payer's approved payments, oldest first; `sum_cents` is their total.
  struct PayerWindow {
    std::deque<Payment> payments;
    std::int64_t sum_cents = 0;
  };

  Decision judge(const PaymentRequest& request, Clock::time_point at);
  bool is_blocked(std::string_view id) const;
  bool is_night(Clock::time_point at) const noexcept;
  void prune(PayerWindow& window, Clock::time_point newest) const;
  void sweep(Clock::time_point at);
  void remember(const std::string& event_id, const Decision& decision, const std::string& fingerprint);
  void admit(const std::string& payer, Clock::time_point at, std::int64_t cents);

  struct Remembered {
    Decision decision;
    std::string fingerprint;
  };

  RulesConfig config_;
  std::unordered_map<std::string, PayerWindow> velocity_;
  Clock::time_point latest_{};      // the latest payment time judged so far
  Clock::time_point last_sweep_{};  // when idle payers were last dropped
  std::unordered_map<std::string, Remembered> decisions_;
  std::deque<std::string> decision_order_;  // keys of decisions_, oldest first
};

}  // namespace pix::antifraud
