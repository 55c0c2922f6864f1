#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "pix/antifraud/rules.hpp"
#include "pix/domain/amount.hpp"
#include "pix/domain/pix_keys.hpp"
#include "pix/gateway/publish_request.hpp"
#include "pix/sim/key_generator.hpp"
#include "pix/sim/payment_generator.hpp"
#include "pix/sim/population.hpp"
#include "pix/sim/seed_events.hpp"

namespace pix::sim {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;
using domain::KeyType;
using Clock = system_clock;

constexpr std::array<KeyType, 5> kAllTypes = {KeyType::kCpf, KeyType::kCnpj, KeyType::kPhone, KeyType::kEmail,
                                              KeyType::kEvp};

// A time of day in Sao Paulo (UTC-3) on 2026-06-15.
Clock::time_point sao_paulo(int hour, int minute) {
  return sys_days{2026y / June / 15} + hours(hour + 3) + minutes(minute);
}
const Clock::time_point kNoon = sao_paulo(12, 0);

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ^\+55[1-9]{2}9\d{8}$, the Brazilian mobile form of PIX.md.
bool is_brazilian_mobile(std::string_view s) {
  return s.size() == 14 && s.substr(0, 3) == "+55" && s[3] >= '1' && s[3] <= '9' && s[4] >= '1' && s[4] <= '9' &&
         s[5] == '9' && is_digits(s.substr(6));
}

void expect_valid_key(const std::string& key, KeyType type) {
  const auto check = domain::check_key(key);
  ASSERT_TRUE(check) << domain::to_string(type) << " '" << key << "': " << check.error;
  EXPECT_EQ(*check.type, type) << key;
  EXPECT_EQ(domain::detect_key_type(key), type) << key;
  EXPECT_TRUE(domain::check_key(key, type)) << key;
  EXPECT_LE(key.size(), domain::kMaxKeyLength) << key;
}

// --- keys ---

TEST(SimKeys, TenThousandOfEachTypeAreValidAndDetectedAsTheirType) {
  Rng rng(1);
  for (const KeyType type : kAllTypes) {
    std::unordered_set<std::string> seen;
    for (int i = 0; i < 10'000; ++i) {
      const std::string key = make_key(rng, type);
      expect_valid_key(key, type);
      seen.insert(key);
      if (HasFatalFailure()) return;
    }
    // Random keys do not repeat (e-mails, built from names, may a little).
    EXPECT_GT(seen.size(), type == KeyType::kEmail ? 9'000u : 9'990u) << domain::to_string(type);
  }
}

TEST(SimKeys, EachGeneratorHasItsDocumentedShape) {
  Rng rng(2);
  for (int i = 0; i < 10'000; ++i) {
    const std::string cpf = make_cpf(rng);
    expect_valid_key(cpf, KeyType::kCpf);
    EXPECT_TRUE(is_digits(cpf) && cpf.size() == 11) << cpf;  // bare digits
    EXPECT_NE(cpf.find_first_not_of(cpf[0]), std::string::npos) << cpf;

    const std::string numeric = make_cnpj(rng, false);
    expect_valid_key(numeric, KeyType::kCnpj);
    EXPECT_TRUE(is_digits(numeric) && numeric.size() == 14) << numeric;

    const std::string alphanumeric = make_cnpj(rng, true);
    expect_valid_key(alphanumeric, KeyType::kCnpj);
    ASSERT_EQ(alphanumeric.size(), 14u);
    EXPECT_TRUE(std::any_of(alphanumeric.begin(), alphanumeric.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
        << alphanumeric;
    EXPECT_TRUE(is_digits(alphanumeric.substr(12))) << alphanumeric;  // the check digits stay numeric

    const std::string phone = make_phone(rng);
    expect_valid_key(phone, KeyType::kPhone);
    EXPECT_TRUE(is_brazilian_mobile(phone)) << phone;

    const std::string email = make_email(rng);
    expect_valid_key(email, KeyType::kEmail);
    EXPECT_TRUE(std::none_of(email.begin(), email.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) << email;

    const std::string evp = make_evp(rng);
    expect_valid_key(evp, KeyType::kEvp);
    EXPECT_EQ(evp[14], '4') << evp;                                               // version 4
    EXPECT_NE(std::string_view("89ab").find(evp[19]), std::string::npos) << evp;  // RFC 4122 variant
    if (HasFailure()) return;
  }
}

TEST(SimKeys, InvalidKeysOfEveryKindFailTheValidatorForTheIntendedReason) {
  const std::map<InvalidKeyKind, std::string> reasons = {
      {InvalidKeyKind::kCpfCheckDigit, "cpf check digits do not match"},
      {InvalidKeyKind::kCpfRepeated, "cpf cannot be 11 identical digits"},
      {InvalidKeyKind::kCnpjCheckDigit, "cnpj check digits do not match"},
      {InvalidKeyKind::kCnpjLowercase, "cnpj letters must be uppercase"},
      {InvalidKeyKind::kPhoneLandline, "brazilian phone must be a mobile: +55, 2-digit area code, 9 and 8 digits"},
      {InvalidKeyKind::kPhoneWithoutPlus, "key is not a cpf, cnpj, phone (+...), e-mail or evp"},
      {InvalidKeyKind::kEmailUppercase, "e-mail must be lowercase"},
      {InvalidKeyKind::kEmailNoDomainDot, "e-mail domain must have a dot, as in example.com"},
      {InvalidKeyKind::kEmailTooLong, "key is longer than 77 characters"},
      {InvalidKeyKind::kEvpUppercase, "evp must be a lowercase uuid"},
      {InvalidKeyKind::kEvpMalformed, "key is not a cpf, cnpj, phone (+...), e-mail or evp"},
  };
  ASSERT_EQ(reasons.size(), static_cast<std::size_t>(kInvalidKeyKinds));
  Rng rng(3);
  for (const auto& [kind, reason] : reasons) {
    for (int i = 0; i < 1'000; ++i) {
      const std::string key = make_invalid_key(rng, kind);
      const auto check = domain::check_key(key);
      ASSERT_FALSE(check) << key << " passed as " << domain::to_string(*check.type);
      EXPECT_EQ(check.error, reason) << key;
      EXPECT_FALSE(domain::detect_key_type(key)) << key;
    }
  }
}

TEST(SimKeys, RandomInvalidKeysAllFailAndCoverEveryKind) {
  Rng rng(4);
  std::set<std::string> errors;
  for (int i = 0; i < 10'000; ++i) {
    const std::string key = make_invalid_key(rng);
    const auto check = domain::check_key(key);
    ASSERT_FALSE(check) << key;
    errors.insert(check.error);
  }
  EXPECT_EQ(errors.size(), 10u);  // 11 kinds, two of which share "not a ... key"
}

TEST(SimKeys, SameSeedSameKeys) {
  Rng a(99);
  Rng b(99);
  Rng c(100);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    for (const KeyType type : kAllTypes) {
      const std::string ka = make_key(a, type);
      EXPECT_EQ(ka, make_key(b, type));
      differ += ka != make_key(c, type) ? 1 : 0;
    }
  }
  EXPECT_GT(differ, 450);
}

TEST(SimDraws, UniformAndNormalHaveTheirMoments) {
  Rng rng(5);
  std::array<int, 7> buckets{};
  for (int i = 0; i < 70'000; ++i) ++buckets[uniform_below(rng, 7)];
  for (int count : buckets) EXPECT_NEAR(count, 10'000, 400);
  double sum = 0;
  double sum_sq = 0;
  constexpr int kN = 100'000;
  for (int i = 0; i < kN; ++i) {
    const double z = standard_normal(rng);
    sum += z;
    sum_sq += z * z;
  }
  EXPECT_NEAR(sum / kN, 0.0, 0.02);
  EXPECT_NEAR(sum_sq / kN, 1.0, 0.02);
  EXPECT_NE(derive_seed(42, 1), derive_seed(42, 2));
  EXPECT_NE(derive_seed(42, 1), derive_seed(43, 1));
}

// --- population ---

TEST(SimPopulation, IdsAreTheOnesSettlementFunds) {
  EXPECT_EQ(account_id(1), "pix-0001");
  EXPECT_EQ(account_id(42), "pix-0042");
  EXPECT_EQ(account_id(9999), "pix-9999");
  EXPECT_EQ(account_id(10000), "pix-10000");
  const auto accounts = make_population(1000, 42);
  ASSERT_EQ(accounts.size(), 1000u);
  for (std::size_t i = 0; i < accounts.size(); ++i) {
    char expected[32];
    std::snprintf(expected, sizeof expected, "pix-%04zu", i + 1);  // settlement's own format
    EXPECT_EQ(accounts[i].id, expected);
  }
  EXPECT_EQ(make_population(10'001, 1).back().id, "pix-10001");
  EXPECT_TRUE(make_population(0, 1).empty());
}

TEST(SimPopulation, KeyMixAndCompanies) {
  const auto accounts = make_population(1000, 42);
  std::map<KeyType, int> types;
  int companies = 0;
  int alphanumeric = 0;
  std::unordered_set<std::string> keys;
  for (const auto& a : accounts) {
    expect_valid_key(a.key, a.key_type);
    ++types[a.key_type];
    EXPECT_EQ(a.company, a.key_type == KeyType::kCnpj) << a.id;
    companies += a.company ? 1 : 0;
    alphanumeric += a.company && !is_digits(a.key) ? 1 : 0;
    keys.insert(a.key);
  }
  EXPECT_EQ(types[KeyType::kCpf], 300);
  EXPECT_EQ(types[KeyType::kCnpj], 100);
  EXPECT_EQ(types[KeyType::kPhone], 250);
  EXPECT_EQ(types[KeyType::kEmail], 200);
  EXPECT_EQ(types[KeyType::kEvp], 150);
  EXPECT_EQ(companies, 100);
  EXPECT_EQ(alphanumeric, 50);
  EXPECT_EQ(keys.size(), accounts.size());  // a key names one account
  // Types are spread over the ids, not in blocks.
  std::set<KeyType> first_twenty;
  for (std::size_t i = 0; i < 20; ++i) first_twenty.insert(accounts[i].key_type);
  EXPECT_GE(first_twenty.size(), 4u);
}

TEST(SimPopulation, CountsAddUpForAnySize) {
  for (const std::size_t n : {1u, 2u, 3u, 7u, 13u, 101u}) {
    const auto accounts = make_population(n, 7);
    ASSERT_EQ(accounts.size(), n);
    std::map<KeyType, int> types;
    for (const auto& a : accounts) ++types[a.key_type];
    // Each type within one account of its share.
    EXPECT_NEAR(types[KeyType::kCpf], 0.30 * static_cast<double>(n), 1.0) << n;
    EXPECT_NEAR(types[KeyType::kCnpj], 0.10 * static_cast<double>(n), 1.0) << n;
    EXPECT_NEAR(types[KeyType::kPhone], 0.25 * static_cast<double>(n), 1.0) << n;
  }
}

TEST(SimPopulation, DeterministicForASeed) {
  const auto a = make_population(500, 42);
  const auto b = make_population(500, 42);
  const auto c = make_population(500, 43);
  int same_as_c = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].key, b[i].key);
    EXPECT_EQ(a[i].key_type, b[i].key_type);
    same_as_c += a[i].key == c[i].key ? 1 : 0;
  }
  EXPECT_EQ(same_as_c, 0);
}

// --- payments ---

PaymentOptions day_options() {
  PaymentOptions o;
  o.clock = [] { return kNoon; };
  return o;
}

// A clock for a source that sends one request every `step` from `start` (the source reads its
// clock once per request).
std::function<Clock::time_point()> stepping_clock(Clock::time_point start, Clock::duration step) {
  auto calls = std::make_shared<long>(0);
  return [=] { return start + step * (*calls)++; };
}

// Options whose requests are made at `start`, `start + step`, ... (judge() them with the same).
PaymentOptions paced_options(Clock::time_point start, Clock::duration step) {
  PaymentOptions o;
  o.clock = stepping_clock(start, step);
  return o;
}

struct Payment {
  RequestSpec spec;
  boost::json::object value;
};

Payment payment_of(const RequestSpec& spec) {
  Payment p;
  p.spec = spec;
  const boost::json::value doc = boost::json::parse(spec.body);
  EXPECT_EQ(doc.at("topic").as_string(), "pix.payment.requested") << spec.body;
  p.value = doc.at("value").as_object();
  return p;
}

std::string field(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t cents_of(const boost::json::object& value) {
  return domain::parse_amount(value.at("amount")).cents.value_or(-1);
}

std::vector<Payment> generate(const PaymentOptions& options, std::size_t count) {
  const RequestSource source = make_payment_source(options);
  std::vector<Payment> out;
  out.reserve(count);
  for (std::uint64_t seq = 0; seq < count; ++seq) out.push_back(payment_of(source(seq)));
  return out;
}

// Runs `payments` through a default rule engine, the i-th at `start + i * spacing`. Returns the
// decisions.
std::vector<antifraud::Decision> judge(const std::vector<Payment>& payments, Clock::time_point start,
                                       Clock::duration spacing) {
  antifraud::RuleEngine engine({});
  std::vector<antifraud::Decision> out;
  out.reserve(payments.size());
  for (std::size_t i = 0; i < payments.size(); ++i) {
    const auto at = start + spacing * static_cast<long>(i);
    auto request = antifraud::payment_request_from_json(payments[i].value, "evt-" + std::to_string(i), at);
    if (const auto* error = std::get_if<std::string>(&request)) {
      ADD_FAILURE() << *error << ": " << payments[i].spec.body;
      out.emplace_back();
      continue;
    }
    out.push_back(engine.evaluate(std::get<antifraud::PaymentRequest>(request), at));
  }
  return out;
}

// The code and rule each label is documented to be rejected with.
const std::map<std::string, std::pair<std::string, std::string>> kExpectedRejection = {
    {std::string(kLabelZeroAmount), {"AM01", "positive_amount"}},
    {std::string(kLabelOverLimit), {"AM02", "per_transaction_limit"}},
    {std::string(kLabelInvalidKey), {"AC03", "receiver_key"}},
    {std::string(kLabelThreeDecimals), {"ED05", "amount_format"}},
};

TEST(SimPayments, BodiesHaveTheDocumentedShapeAndPassTheGateway) {
  const auto accounts = make_population(1000, 42);
  std::unordered_map<std::string, const Account*> by_id;
  for (const auto& a : accounts) by_id[a.id] = &a;

  const auto payments = generate(day_options(), 5'000);
  int with_payer_key = 0;
  for (std::size_t seq = 0; seq < payments.size(); ++seq) {
    const Payment& p = payments[seq];
    EXPECT_EQ(p.spec.endpoint, 0u);
    EXPECT_EQ(p.spec.target, "/kafka");

    const auto parsed = gateway::parse_publish_request("application/json", p.spec.body);
    ASSERT_TRUE(std::holds_alternative<gateway::PublishCommand>(parsed))
        << p.spec.body << ": " << std::get<http::Problem>(parsed).detail;
    const auto& command = std::get<gateway::PublishCommand>(parsed);
    EXPECT_EQ(command.topic, domain::Topic::kPaymentRequested);
    EXPECT_EQ(command.transaction_id, "sim42-" + std::to_string(seq));

    ASSERT_EQ(p.spec.headers.size(), 1u);
    EXPECT_EQ(p.spec.headers[0].first, "Idempotency-Key");
    EXPECT_EQ(p.spec.headers[0].second, command.transaction_id);

    const std::string payer = field(p.value, "payer");
    const std::string receiver = field(p.value, "receiver");
    ASSERT_TRUE(by_id.count(payer)) << p.spec.body;
    ASSERT_TRUE(by_id.count(receiver)) << p.spec.body;
    EXPECT_NE(payer, receiver);
    EXPECT_EQ(field(p.value, "payerType"), by_id[payer]->company ? "PJ" : "PF");
    if (p.value.contains("payerKey")) {
      ++with_payer_key;
      EXPECT_EQ(field(p.value, "payerKey"), by_id[payer]->key);
    }
    if (p.spec.label != kLabelInvalidKey) {
      EXPECT_EQ(field(p.value, "receiverKey"), by_id[receiver]->key);
    }
    ASSERT_TRUE(p.value.at("amount").is_string()) << p.spec.body;
  }
  EXPECT_NEAR(with_payer_key, 2'500, 200);
}

TEST(SimPayments, RuleAbidingPaymentsAreApprovedAndRuleBreakersRejectedWithTheirCode) {
  // The documented scenario: 1,000 accounts, 300 payments/s for a minute in the afternoon.
  const auto payments = generate(paced_options(sao_paulo(14, 0), 3333us), 18'000);
  const auto decisions = judge(payments, sao_paulo(14, 0), 3333us);
  std::map<std::string, int> labels;
  for (std::size_t i = 0; i < payments.size(); ++i) {
    const auto& label = payments[i].spec.label;
    ++labels[label];
    const auto& d = decisions[i];
    if (label == kLabelPayment) {
      EXPECT_TRUE(d.approved) << d.code << " " << d.rule << ": " << d.message << " " << payments[i].spec.body;
      EXPECT_EQ(d.amount_cents, cents_of(payments[i].value));
    } else {
      ASSERT_TRUE(kExpectedRejection.count(label)) << label;
      EXPECT_FALSE(d.approved) << payments[i].spec.body;
      EXPECT_EQ(d.code, kExpectedRejection.at(label).first) << payments[i].spec.body;
      EXPECT_EQ(d.rule, kExpectedRejection.at(label).second) << payments[i].spec.body;
    }
  }
  // 5% break a rule, the four rules in equal parts.
  const int breaking = 18'000 - labels[std::string(kLabelPayment)];
  EXPECT_NEAR(breaking, 900, 90);
  for (const auto& [label, expected] : kExpectedRejection) EXPECT_NEAR(labels[label], 225, 60) << label;
}

TEST(SimPayments, RuleBreakingShareIsFollowed) {
  PaymentOptions none = day_options();
  none.rule_breaking_share = 0.0;
  for (const auto& p : generate(none, 2'000)) EXPECT_EQ(p.spec.label, kLabelPayment);

  PaymentOptions all = day_options();
  all.rule_breaking_share = 1.0;
  const auto payments = generate(all, 2'000);
  const auto decisions = judge(payments, kNoon, 1s);
  for (std::size_t i = 0; i < payments.size(); ++i) {
    EXPECT_NE(payments[i].spec.label, kLabelPayment);
    EXPECT_FALSE(decisions[i].approved) << payments[i].spec.body;
    EXPECT_EQ(decisions[i].code, kExpectedRejection.at(payments[i].spec.label).first);
  }
}

TEST(SimPayments, PayersTakeTurnsSoVelocityCountCannotTrip) {
  PaymentOptions o = paced_options(kNoon, 316ms);
  o.population = 100;
  const auto payments = generate(o, 3'000);
  // Each round of 100 requests has every account paying once.
  for (std::size_t round = 0; round < 30; ++round) {
    std::set<std::string> payers;
    for (std::size_t i = round * 100; i < (round + 1) * 100; ++i) payers.insert(field(payments[i].value, "payer"));
    EXPECT_EQ(payers.size(), 100u) << "round " << round;
  }
  // In any 1,900 consecutive requests (19 x N) no account pays more than 20 times.
  const std::size_t k = velocity_safe_requests(o.population);
  ASSERT_EQ(k, 1'900u);
  std::map<std::string, int> window;
  int most = 0;
  for (std::size_t i = 0; i < payments.size(); ++i) {
    most = std::max(most, ++window[field(payments[i].value, "payer")]);
    if (i >= k) --window[field(payments[i - k].value, "payer")];
  }
  EXPECT_LE(most, 20);
  // Sent as fast as that allows (at most 1,900 in any 10 minutes), none trips velocity_count.
  const auto decisions = judge(payments, kNoon, 316ms);
  for (const auto& d : decisions) EXPECT_NE(d.rule, "velocity_count");
}

// The decisions on `count` rule-abiding payments among `n` accounts, sent evenly within `span`.
std::map<std::string, int> rules_tripped(std::size_t n, std::size_t count, Clock::duration span, std::uint64_t seed) {
  const auto step = span / static_cast<long>(count);
  PaymentOptions o = paced_options(kNoon, step);
  o.population = n;
  o.seed = seed;
  o.rule_breaking_share = 0.0;
  const auto payments = generate(o, count);
  std::map<std::string, int> out;
  for (const auto& d : judge(payments, kNoon, step)) ++out[d.approved ? "" : d.rule];
  return out;
}

TEST(SimPayments, VelocityCannotTripUpToTheSafeNumberOfRequests) {
  // 19 x N requests within 10 minutes, the most velocity_safe_requests() allows: 19 or 20
  // payments per payer in the window, which amounts left alone would push past R$ 20,000 for
  // ~0.17% of them. The payers' budgets keep every one approved.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const auto tripped = rules_tripped(500, 9'500, 599s, seed);
    EXPECT_EQ(tripped.size(), 1u) << "seed " << seed << ": first rule " << tripped.rbegin()->first;
    EXPECT_EQ(tripped.at(""), 9'500);
  }
  // Past the bound velocity_count does trip, for about (k / N - 20) payments per payer.
  const auto over = rules_tripped(500, 12'500, 599s, 1);
  EXPECT_NEAR(over.at("velocity_count"), 2'500, 250);
}

TEST(SimPayments, VelocityBudgetBindsOnlyWhenAPayerPaysOften) {
  // 100 accounts, 20,000 payments (200 each). One every 10 s: a payer pays every 1,000 s, never
  // twice in a window, so no budget binds. All at one instant: every payer's payments are in one
  // window, and budgets cut those that would take 20 in a row past R$ 20,000.
  PaymentOptions slow = paced_options(kNoon, 10s);
  PaymentOptions instant = day_options();
  for (auto* o : {&slow, &instant}) {
    o->population = 100;
    o->rule_breaking_share = 0.0;
    o->night_aware = false;  // the slow run lasts 55 hours
  }
  const auto paced = generate(slow, 20'000);
  const auto bunched = generate(instant, 20'000);
  int cut = 0;
  std::map<std::string, std::vector<std::int64_t>> by_payer;
  for (std::size_t i = 0; i < paced.size(); ++i) {
    const auto paced_cents = cents_of(paced[i].value);
    const auto bunched_cents = cents_of(bunched[i].value);
    EXPECT_LE(bunched_cents, paced_cents);
    cut += bunched_cents < paced_cents ? 1 : 0;
    by_payer[field(bunched[i].value, "payer")].push_back(bunched_cents);
  }
  EXPECT_GT(cut, 50);  // about 0.5% of payments
  // Any 20 payments in a row of a payer total at most the velocity limit.
  for (const auto& [payer, amounts] : by_payer) {
    std::int64_t window = 0;
    for (std::size_t i = 0; i < amounts.size(); ++i) {
      window += amounts[i] - (i >= 20 ? amounts[i - 20] : 0);
      ASSERT_LE(window, 2'000'000) << payer << " payment " << i;
    }
  }
}

TEST(SimPayments, AmountsHaveTheMeanTicketAndManySmallOnes) {
  // 1,000 accounts at 10 payments/s: about 6 per payer in a window, where budgets do not bind.
  PaymentOptions o = paced_options(kNoon, 100ms);
  o.rule_breaking_share = 0.0;
  const RequestSource source = make_payment_source(o);
  std::vector<std::int64_t> cents;
  constexpr std::size_t kN = 100'000;
  cents.reserve(kN);
  for (std::uint64_t seq = 0; seq < kN; ++seq) {
    const auto doc = boost::json::parse(source(seq).body);
    cents.push_back(cents_of(doc.at("value").as_object()));
  }
  std::sort(cents.begin(), cents.end());
  double total = 0;
  for (auto c : cents) total += static_cast<double>(c);
  const double mean = total / kN / 100;
  const auto quantile = [&](double q) { return static_cast<double>(cents[static_cast<std::size_t>(q * kN)]) / 100; };
  const auto under_200 = std::lower_bound(cents.begin(), cents.end(), 20'000) - cents.begin();
  std::printf("[ SimStats ] amounts over %zu: mean %.2f, median %.2f, p90 %.2f, p99 %.2f, max %.2f, %.1f%% < 200\n", kN,
              mean, quantile(0.5), quantile(0.9), quantile(0.99), static_cast<double>(cents.back()) / 100,
              100.0 * static_cast<double>(under_200) / kN);
  EXPECT_NEAR(mean, 443, 443 * 0.05);
  EXPECT_LT(quantile(0.5), 100);
  EXPECT_GT(under_200, static_cast<long>(kN * 0.7));
  EXPECT_GE(cents.front(), 1);
  EXPECT_LE(cents.back(), kMaxGeneratedCents);
}

TEST(SimPayments, IndividualsStayUnderTheNightLimitAtNight) {
  for (const auto when : {sao_paulo(23, 0), sao_paulo(3, 30), sao_paulo(19, 59)}) {
    PaymentOptions o;
    o.clock = [when] { return when; };
    const auto payments = generate(o, 5'000);
    const auto decisions = judge(payments, when + 1min, 10ms);
    std::int64_t largest_company_payment = 0;
    for (std::size_t i = 0; i < payments.size(); ++i) {
      if (payments[i].spec.label != kLabelPayment) continue;
      const bool company = field(payments[i].value, "payerType") == "PJ";
      if (company) {
        largest_company_payment = std::max(largest_company_payment, cents_of(payments[i].value));
      } else {
        EXPECT_LE(cents_of(payments[i].value), 100'000) << payments[i].spec.body;
      }
      EXPECT_TRUE(decisions[i].approved) << decisions[i].rule << ": " << decisions[i].message;
    }
    EXPECT_GT(largest_company_payment, 100'000);  // companies have no night limit
  }
  // Without night_aware, individuals' night payments do trip the night limit.
  PaymentOptions o;
  o.night_aware = false;
  const auto payments = generate(o, 2'000);
  const auto decisions = judge(payments, sao_paulo(23, 0), 10ms);
  EXPECT_TRUE(std::any_of(decisions.begin(), decisions.end(), [](const auto& d) { return d.rule == "night_limit"; }));
}

TEST(SimPayments, RetriesRepeatAnEarlierKeyAndBody) {
  PaymentOptions o = day_options();
  o.retry_share = 0.2;
  const RequestSource source = make_payment_source(o);
  std::map<std::string, std::string> first;  // key -> body
  int retries = 0;
  for (std::uint64_t seq = 0; seq < 5'000; ++seq) {
    const RequestSpec spec = source(seq);
    ASSERT_EQ(spec.headers.size(), 1u);
    const std::string& key = spec.headers[0].second;
    if (spec.label == kLabelRetry) {
      ++retries;
      ASSERT_TRUE(first.count(key)) << "retry of a key never sent: " << key;
      EXPECT_EQ(spec.body, first[key]);
    } else {
      EXPECT_TRUE(first.emplace(key, spec.body).second) << "fresh request reused " << key;
    }
  }
  EXPECT_NEAR(retries, 1'000, 120);

  // Asked out of order, a retry is the same request.
  const RequestSource again = make_payment_source(o);
  for (std::uint64_t seq : {4'999u, 1'234u, 17u}) EXPECT_EQ(again(seq).body, source(seq).body);

  // Without idempotency keys the retry is a bare duplicate.
  o.idempotency_keys = false;
  for (std::uint64_t seq = 0; seq < 100; ++seq) EXPECT_TRUE(make_payment_source(o)(seq).headers.empty());
}

TEST(SimPayments, DeterministicForTheOptions) {
  const RequestSource a = make_payment_source(day_options());
  const RequestSource b = make_payment_source(day_options());
  for (std::uint64_t seq = 0; seq < 5'000; ++seq) {
    const RequestSpec sa = a(seq);
    const RequestSpec sb = b(seq);
    EXPECT_EQ(sa.body, sb.body) << seq;
    EXPECT_EQ(sa.headers, sb.headers) << seq;
    EXPECT_EQ(sa.label, sb.label) << seq;
  }
  // A request depends on its seq, not on being asked in order (the velocity budget aside, which
  // binds only when a payer's recent payments are large).
  const RequestSource fresh = make_payment_source(day_options());
  for (std::uint64_t seq : {4'999u, 1'234u, 17u}) EXPECT_EQ(fresh(seq).body, a(seq).body);

  PaymentOptions other = day_options();
  other.seed = 43;
  const RequestSource c = make_payment_source(other);
  int same = 0;
  for (std::uint64_t seq = 0; seq < 100; ++seq) same += a(seq).body == c(seq).body ? 1 : 0;
  EXPECT_EQ(same, 0);

  other.run_id = "run-7";
  EXPECT_NE(make_payment_source(other)(3).body.find(R"("transactionId":"run-7-3")"), std::string::npos);
  other.target = "/rabbit";
  EXPECT_EQ(make_payment_source(other)(0).endpoint, 1u);
  EXPECT_EQ(make_payment_source(other)(0).target, "/rabbit");
}

TEST(SimPayments, BalancesStayFundedOverFiftyRounds) {
  // 50 payments per account (the documented bound), settled in order as the ledger would.
  PaymentOptions o = paced_options(kNoon, 1s);
  o.population = 400;
  const auto payments = generate(o, 400 * 50);
  const auto decisions = judge(payments, kNoon, 1s);  // slow enough that velocity never matters
  std::unordered_map<std::string, std::int64_t> balance;
  std::int64_t lowest = 5'000'000;
  double sum_sq = 0;
  for (std::size_t i = 0; i < payments.size(); ++i) {
    if (!decisions[i].approved) continue;
    const auto cents = decisions[i].amount_cents;
    auto& payer = balance.try_emplace(field(payments[i].value, "payer"), 5'000'000).first->second;
    payer -= cents;
    balance.try_emplace(field(payments[i].value, "receiver"), 5'000'000).first->second += cents;
    lowest = std::min(lowest, payer);
  }
  for (const auto& [id, cents] : balance) sum_sq += std::pow(static_cast<double>(cents - 5'000'000) / 100, 2);
  std::printf("[ SimStats ] after 50 rounds of 400 accounts: lowest balance %.2f, sd of change %.0f\n",
              static_cast<double>(lowest) / 100, std::sqrt(sum_sq / static_cast<double>(balance.size())));
  EXPECT_GT(lowest, 0);
}

TEST(SimPayments, RejectsBadOptionsAndDescribesGoodOnes) {
  PaymentOptions o;
  o.population = 1;
  EXPECT_THROW(make_payment_source(o), std::invalid_argument);
  o = {};
  o.rule_breaking_share = 1.5;
  EXPECT_THROW(make_payment_source(o), std::invalid_argument);
  o = {};
  o.retry_share = -0.1;
  EXPECT_THROW(make_payment_source(o), std::invalid_argument);
  o = {};
  o.target = "/kafka/";
  EXPECT_THROW(make_payment_source(o), std::invalid_argument);

  const std::string text = describe(PaymentOptions{});
  EXPECT_NE(text.find("1000 accounts (pix-0001..pix-1000)"), std::string::npos) << text;
  EXPECT_NE(text.find("run id sim42"), std::string::npos) << text;
  EXPECT_NE(text.find("5.0% break a rule"), std::string::npos) << text;
  EXPECT_NE(text.find("19000 payments per 10 minutes (31.7/s sustained)"), std::string::npos) << text;
}

// --- the seed's events ---

TEST(SimSeedEvents, YieldsExactlyTheSeedsFiveEventsToTheRightApi) {
  const RequestSource source = make_seed_source(42);
  std::map<std::string, int> seen;
  for (std::uint64_t seq = 0; seq < 1'000; ++seq) {
    const RequestSpec spec = source(seq);
    ++seen[spec.body];
    const auto parsed = gateway::parse_publish_request("application/json", spec.body);
    ASSERT_TRUE(std::holds_alternative<gateway::PublishCommand>(parsed)) << spec.body;
    const auto& command = std::get<gateway::PublishCommand>(parsed);
    EXPECT_EQ(domain::topic_name(command.topic), spec.label);
    EXPECT_EQ(command.transaction_id, "tx123");
    const bool payment = spec.label.rfind("pix.payment.", 0) == 0;
    EXPECT_EQ(spec.endpoint, payment ? 0u : 1u) << spec.label;
    EXPECT_EQ(spec.target, payment ? "/kafka" : "/rabbit") << spec.label;
    EXPECT_TRUE(spec.headers.empty());
  }
  ASSERT_EQ(seen.size(), 5u);
  for (const auto& [body, count] : seen) EXPECT_NEAR(count, 200, 60) << body;

  // As Python's json.dumps wrote them.
  EXPECT_EQ(seen.count(R"({"topic": "pix.payment.requested", "value": {"transactionId": "tx123", "amount": 100, )"
                       R"("payer": "Alice", "receiver": "Bob"}})"),
            1u);
  EXPECT_EQ(seen.count(R"({"topic": "pix.audit.log", "value": {"transactionId": "tx123", "action": "completed"}})"),
            1u);
  std::set<std::string> topics;
  for (const auto& e : kSeedEvents) topics.emplace(e.topic);
  EXPECT_EQ(topics, std::set<std::string>(domain::kTopicNames.begin(), domain::kTopicNames.end()));
}

TEST(SimSeedEvents, DeterministicForASeed) {
  const RequestSource a = make_seed_source(7);
  const RequestSource b = make_seed_source(7);
  const RequestSource c = make_seed_source(8);
  int differ = 0;
  for (std::uint64_t seq = 0; seq < 200; ++seq) {
    EXPECT_EQ(a(seq).body, b(seq).body);
    differ += a(seq).body != c(seq).body ? 1 : 0;
  }
  EXPECT_GT(differ, 100);
}

}  // namespace
}  // namespace pix::sim
