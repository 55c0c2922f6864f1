#include "pix/sim/payment_generator.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "pix/antifraud/rules.hpp"
#include "pix/domain/amount.hpp"
#include "pix/domain/topics.hpp"
#include "pix/sim/population.hpp"

namespace pix::sim {
namespace {

using Clock = std::chrono::system_clock;

// The amount model (see the header): two lognormals, by median (in reais) and sigma.
constexpr double kLargeShare = 0.15;
constexpr double kEverydayMedian = 40.0;
constexpr double kEverydaySigma = 1.2;
constexpr double kLargeMedian = 2080.0;
constexpr double kLargeSigma = 0.6;
// Draws of an amount over its cap (the transaction limit, the night limit, the payer's velocity
// budget) before settling for the cap itself. One everyday draw in 270 is over R$ 1,000 and one
// large draw in 2,000 over R$ 15,000, so a fixed cap is practically never taken as the amount.
constexpr int kRedraws = 16;

// Sub-streams of the seed (the population uses stream 1).
constexpr std::uint64_t kRequestStream = 2;
constexpr std::uint64_t kPayerOrderStream = 3;

// A payment is judged a little after it is made: treat the last minutes before night as night.
constexpr auto kNightMargin = std::chrono::minutes(2);
// How long after it was made a payment may still be judged: the gateway answers within its
// publish timeout (5 s by default), so a minute is ample.
constexpr auto kVelocityMargin = std::chrono::minutes(1);

// Share of payments that also name the payer's own key.
constexpr double kPayerKeyShare = 0.5;

enum class Kind { kPayment, kZeroAmount, kOverLimit, kInvalidKey, kThreeDecimals };
constexpr std::array<Kind, 4> kRuleBreaks = {Kind::kZeroAmount, Kind::kOverLimit, Kind::kInvalidKey,
                                             Kind::kThreeDecimals};

std::string_view label_of(Kind kind) {
  switch (kind) {
    case Kind::kPayment:
      return kLabelPayment;
    case Kind::kZeroAmount:
      return kLabelZeroAmount;
    case Kind::kOverLimit:
      return kLabelOverLimit;
    case Kind::kInvalidKey:
      return kLabelInvalidKey;
    case Kind::kThreeDecimals:
      return kLabelThreeDecimals;
  }
  return kLabelPayment;
}

// A lognormal amount in centavos, at least 1; a draw over `max_cents` is drawn again (the
// distribution is truncated there, so no amount piles up at the cap).
std::int64_t lognormal_cents(Rng& rng, double median, double sigma, std::int64_t max_cents) {
  for (int i = 0; i < kRedraws; ++i) {
    const double reais = median * std::exp(sigma * standard_normal(rng));
    const auto cents = std::max(std::int64_t{1}, static_cast<std::int64_t>(std::llround(reais * 100.0)));
    if (cents <= max_cents) return cents;
  }
  return max_cents;
}

// Whether an individual paying now could be judged at night by the default rules.
bool is_night(Clock::time_point now) {
  static const antifraud::RulesConfig kRules{};
  const auto night_at = [](Clock::time_point t) {
    using namespace std::chrono;
    const auto local = t + minutes(kRules.utc_offset_minutes);
    const auto hour = floor<hours>(local - floor<days>(local)).count();
    const int start = kRules.night_start_hour;
    const int end = kRules.night_end_hour;
    if (start == end) return false;
    return start < end ? hour >= start && hour < end : hour >= start || hour < end;
  };
  return night_at(now) || night_at(now + kNightMargin);
}

void check_share(double share, const char* name) {
  if (!(share >= 0.0 && share <= 1.0)) {
    throw std::invalid_argument(std::string(name) + " must be from 0 to 1, not " + std::to_string(share));
  }
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100.0);
  return buf;
}

// What each payer may still pay without tripping velocity_sum, from its own recent payments: the
// last (velocity_max_count - 1) rule-abiding ones, with the time each was made. A payment counts
// while it is younger than the velocity window plus kVelocityMargin, so that a payment judged a
// little later than it was made (queued in the engine, the gateway, Kafka) is still counted.
// With no more of a payer's payments in a window than the ring holds (velocity_safe_requests()),
// velocity_sum cannot trip; at a pace where the window holds few of them, the budget never binds
// and the amounts follow the model untouched.
//
// One centavo is kept back for each payment the payer may still make in the window, so that the
// budget never reaches zero: with k payments in the window totalling S <= max - (depth + 1 - k)
// centavos, the next one may take max - S - (depth - k) >= 1, and a payment leaving the window
// frees at least the centavo it held.
class VelocityBudget {
 public:
  explicit VelocityBudget(std::size_t accounts)
      : depth_(antifraud::RulesConfig{}.velocity_max_count - 1),
        max_sum_(antifraud::RulesConfig{}.velocity_max_sum_cents),
        horizon_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(antifraud::RulesConfig{}.velocity_window +
                                                                          kVelocityMargin)
                        .count()),
        at_ms_(accounts * depth_, 0),
        cents_(accounts * depth_, 0),
        next_(accounts, 0) {}

  std::int64_t remaining(std::size_t account, Clock::time_point now) const {
    const std::int64_t now_ms = to_ms(now);
    std::int64_t sum = 0;
    std::size_t count = 0;
    for (std::size_t i = account * depth_; i < (account + 1) * depth_; ++i) {
      // A slot never used holds 0 centavos; a time ahead of `now` (a clock stepping back) counts.
      if (cents_[i] > 0 && at_ms_[i] > now_ms - horizon_ms_) {
        sum += cents_[i];
        ++count;
      }
    }
    return max_sum_ - sum - static_cast<std::int64_t>(depth_ - count);
  }

  void record(std::size_t account, Clock::time_point now, std::int64_t cents) {
    if (depth_ == 0) return;
    const std::size_t slot = account * depth_ + next_[account];
    at_ms_[slot] = to_ms(now);
    cents_[slot] = static_cast<std::int32_t>(cents);  // at most kMaxGeneratedCents
    next_[account] = static_cast<std::uint32_t>((next_[account] + 1) % depth_);
  }

 private:
  static std::int64_t to_ms(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }

  std::size_t depth_;
  std::int64_t max_sum_;
  std::int64_t horizon_ms_;
  // depth_ slots per account, a ring: when each payment was made and its amount.
  std::vector<std::int64_t> at_ms_;
  std::vector<std::int32_t> cents_;
  std::vector<std::uint32_t> next_;  // per account: the ring's oldest slot
};

// The state behind a payments RequestSource. Copies are independent (the engine may copy the
// std::function); the population is shared and immutable.
class PaymentSource {
 public:
  explicit PaymentSource(const PaymentOptions& options)
      : options_(options),
        run_id_(options.run_id.empty() ? default_run_id(options.seed) : options.run_id),
        endpoint_(options.target == "/rabbit" ? 1 : 0),
        accounts_(std::make_shared<const std::vector<Account>>(make_population(options.population, options.seed))),
        request_seed_(derive_seed(options.seed, kRequestStream)),
        order_seed_(derive_seed(options.seed, kPayerOrderStream)),
        budget_(options.population),
        recent_(kRetryLookback) {}

  RequestSpec operator()(std::uint64_t seq) {
    // The clock is read once per request, retries included (a test's stepping clock relies on it).
    const Clock::time_point now = options_.clock ? options_.clock() : Clock::now();
    RequestSpec spec;
    if (const auto origin = retry_origin(seq)) {
      spec = recalled(*origin, now);
      spec.label = kLabelRetry;
    } else {
      spec = fresh(seq, now, true);
    }
    auto& slot = recent_[seq % kRetryLookback];
    slot.seq = seq;
    slot.spec = spec;
    return spec;
  }

 private:
  struct Recent {
    std::optional<std::uint64_t> seq;
    RequestSpec spec;
  };

  // Every request draws from its own engine, so that its content depends on `seq` (and on the
  // clock, through the night rule and the payer's velocity budget). The first draws decide
  // whether it is a retry (and of what): retry_origin() replays them.
  Rng engine_for(std::uint64_t seq) const { return Rng(derive_seed(request_seed_, seq)); }

  std::optional<std::uint64_t> retry_origin(std::uint64_t seq) const {
    Rng rng = engine_for(seq);
    return retry_origin(rng, seq);
  }

  std::optional<std::uint64_t> retry_origin(Rng& rng, std::uint64_t seq) const {
    if (seq == 0 || !chance(rng, options_.retry_share)) return std::nullopt;
    return seq - 1 - uniform_below(rng, std::min(seq, kRetryLookback));
  }

  // What request `seq` was, as sent: from memory when this source produced it, otherwise made
  // again (a retry of a retry is a retry of the first; its amount may then differ, if the
  // velocity budget cut it the first time).
  RequestSpec recalled(std::uint64_t seq, Clock::time_point now) {
    if (const auto& slot = recent_[seq % kRetryLookback]; slot.seq == seq) return slot.spec;
    while (const auto origin = retry_origin(seq)) seq = *origin;
    return fresh(seq, now, false);
  }

  const Account& payer_of(std::uint64_t seq) {
    const std::size_t n = accounts_->size();
    const std::uint64_t round = seq / n;
    if (round != order_round_) {
      // Fisher-Yates over all accounts with the round's own engine: every account pays once per
      // round, in an order that changes each round.
      order_.resize(n);
      std::iota(order_.begin(), order_.end(), std::uint32_t{0});
      Rng rng(derive_seed(order_seed_, round));
      for (std::size_t i = n; i > 1; --i) std::swap(order_[i - 1], order_[uniform_below(rng, i)]);
      order_round_ = round;
    }
    return (*accounts_)[order_[seq % n]];
  }

  // Request `seq` made anew at `now`; `record`: count its amount in the payer's velocity budget.
  RequestSpec fresh(std::uint64_t seq, Clock::time_point now, bool record) {
    Rng rng = engine_for(seq);
    (void)retry_origin(rng, seq);  // the same draws as when this seq was judged not to be a retry

    Kind kind = Kind::kPayment;
    if (chance(rng, options_.rule_breaking_share)) kind = kRuleBreaks[uniform_below(rng, kRuleBreaks.size())];

    const Account& payer = payer_of(seq);
    const std::size_t n = accounts_->size();
    const std::size_t payer_index = static_cast<std::size_t>(&payer - accounts_->data());
    std::size_t receiver_index = uniform_below(rng, n - 1);
    if (receiver_index >= payer_index) ++receiver_index;
    const Account& receiver = (*accounts_)[receiver_index];
    const bool with_payer_key = chance(rng, kPayerKeyShare);

    const bool night = !payer.company && options_.night_aware && is_night(now);
    std::int64_t cents = draw_amount_cents(rng, night);
    if (kind == Kind::kPayment) {
      // Only rule-abiding payments are approved, so only they count toward velocity.
      const std::int64_t budget = budget_.remaining(payer_index, now);
      for (int i = 0; cents > budget && i < kRedraws; ++i) cents = draw_amount_cents(rng, night);
      cents = std::min(cents, budget);
      if (record) budget_.record(payer_index, now, cents);
    }
    std::string amount;
    std::string receiver_key = receiver.key;
    switch (kind) {
      case Kind::kPayment:
        amount = domain::format_amount(cents);
        break;
      case Kind::kZeroAmount:
        amount = "0.00";
        break;
      case Kind::kOverLimit:
        // R$ 15,000.01 to R$ 50,000.00: over the limit, within what the payer holds.
        amount =
            domain::format_amount(kMaxGeneratedCents + 2 + static_cast<std::int64_t>(uniform_below(rng, 3'500'000)));
        break;
      case Kind::kInvalidKey:
        amount = domain::format_amount(cents);
        receiver_key = make_invalid_key(rng);
        break;
      case Kind::kThreeDecimals:
        // Finer than a centavo: a client that computed with floating point and forgot to round.
        amount = domain::format_amount(cents) + static_cast<char>('1' + uniform_below(rng, 9));
        break;
    }

    boost::json::object value;
    value["transactionId"] = run_id_ + "-" + std::to_string(seq);
    value["amount"] = amount;
    value["payer"] = payer.id;
    value["receiver"] = receiver.id;
    value["payerType"] = payer.company ? "PJ" : "PF";
    if (with_payer_key) value["payerKey"] = payer.key;
    value["receiverKey"] = receiver_key;
    boost::json::object root;
    root["topic"] = domain::topic_name(domain::Topic::kPaymentRequested);
    root["value"] = std::move(value);

    RequestSpec spec;
    spec.endpoint = endpoint_;
    spec.target = options_.target;
    spec.body = boost::json::serialize(root);
    if (options_.idempotency_keys) spec.headers.emplace_back("Idempotency-Key", run_id_ + "-" + std::to_string(seq));
    spec.label = label_of(kind);
    return spec;
  }

  PaymentOptions options_;
  std::string run_id_;
  std::size_t endpoint_;
  std::shared_ptr<const std::vector<Account>> accounts_;
  std::uint64_t request_seed_;
  std::uint64_t order_seed_;
  // The payer order of one round, computed when a seq of another round is asked for.
  std::vector<std::uint32_t> order_;
  std::optional<std::uint64_t> order_round_;
  VelocityBudget budget_;
  std::vector<Recent> recent_;  // the last kRetryLookback requests, at seq % kRetryLookback
};

}  // namespace

std::int64_t draw_amount_cents(Rng& rng, bool individual_at_night) {
  static const std::int64_t kNightLimit = antifraud::RulesConfig{}.night_limit_cents;
  if (individual_at_night) return lognormal_cents(rng, kEverydayMedian, kEverydaySigma, kNightLimit);
  return chance(rng, kLargeShare) ? lognormal_cents(rng, kLargeMedian, kLargeSigma, kMaxGeneratedCents)
                                  : lognormal_cents(rng, kEverydayMedian, kEverydaySigma, kMaxGeneratedCents);
}

std::size_t velocity_safe_requests(std::size_t population) noexcept {
  // In k consecutive requests an account pays at most ceil(k / N) + 1 times (its turn in each
  // round touched); with k <= (max - 1) x N that is at most max.
  const std::size_t max_count = antifraud::RulesConfig{}.velocity_max_count;
  return (max_count - 1) * population;
}

std::string default_run_id(std::uint64_t seed) {
  return "sim" + std::to_string(seed);
}

RequestSource make_payment_source(const PaymentOptions& options) {
  if (options.population < 2) {
    throw std::invalid_argument("population must be at least 2 (a payer pays someone else), not " +
                                std::to_string(options.population));
  }
  if (options.population > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument("population must be at most " +
                                std::to_string(std::numeric_limits<std::uint32_t>::max()));
  }
  check_share(options.rule_breaking_share, "rule_breaking_share");
  check_share(options.retry_share, "retry_share");
  if (options.target != "/kafka" && options.target != "/rabbit") {
    throw std::invalid_argument(R"(target must be "/kafka" or "/rabbit", not ")" + options.target + "\"");
  }
  return PaymentSource(options);
}

std::string describe(const PaymentOptions& options) {
  const std::size_t n = options.population;
  const std::size_t safe = velocity_safe_requests(n);
  std::string out = "payments: " + std::to_string(n) + " accounts (" + account_id(1) + ".." + account_id(n) +
                    "), seed " + std::to_string(options.seed) + ", run id " +
                    (options.run_id.empty() ? default_run_id(options.seed) : options.run_id) + ", POST " +
                    options.target + "; amounts mean ~R$443, median ~R$52 (max " +
                    domain::format_amount(kMaxGeneratedCents) + ")";
  if (options.night_aware) out += ", individuals under R$1,000.00 at night";
  out += "; " + percent(options.rule_breaking_share) + " break a rule (AM01, AM02, AC03, ED05 in equal parts)";
  out += "; " + percent(options.retry_share) + " retries";
  out += options.idempotency_keys ? ", Idempotency-Key on every payment" : ", no Idempotency-Key";
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.1f", static_cast<double>(safe) / 600.0);
  out += "; velocity-safe up to " + std::to_string(safe) + " payments per 10 minutes (" + rate + "/s sustained)";
  return out;
}

}  // namespace pix::sim
