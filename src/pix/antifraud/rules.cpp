#include "pix/antifraud/rules.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>

#include "pix/domain/pix_keys.hpp"

namespace pix::antifraud {
namespace {

using Clock = std::chrono::system_clock;

std::string_view text(const boost::json::string& s) noexcept {
  return {s.data(), s.size()};
}

// The field's value, or nullptr when it is absent or null (both mean "not given").
const boost::json::value* given(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v == nullptr || v->is_null() ? nullptr : v;
}

// --- rules file ---

constexpr std::array<std::string_view, 11> kConfigFields = {"per_transaction_limit",
                                                            "night_limit",
                                                            "night_start_hour",
                                                            "night_end_hour",
                                                            "utc_offset_minutes",
                                                            "velocity_window_seconds",
                                                            "velocity_max_count",
                                                            "velocity_max_sum",
                                                            "blocked",
                                                            "dedupe_capacity",
                                                            "ispb"};

RulesConfigParse config_error(std::string error) {
  RulesConfigParse out;
  out.error = std::move(error);
  return out;
}

// A positive amount in reais, as parse_amount() reads it.
std::optional<std::string> read_limit(std::string_view name, const boost::json::value& v, std::int64_t& out) {
  const auto parsed = domain::parse_amount(v);
  if (!parsed) return std::string(name) + ": " + parsed.error;
  if (*parsed.cents <= 0) return std::string(name) + ": must be more than 0.00";
  out = *parsed.cents;
  return std::nullopt;
}

std::optional<std::string> read_integer(std::string_view name, const boost::json::value& v, std::int64_t min,
                                        std::int64_t max, std::int64_t& out) {
  const auto range = [&] {
    return std::string(name) + ": must be from " + std::to_string(min) + " to " + std::to_string(max);
  };
  if (v.is_uint64()) return range();  // only integers above INT64_MAX are stored unsigned
  if (!v.is_int64()) return std::string(name) + ": must be an integer";
  if (v.get_int64() < min || v.get_int64() > max) return range();
  out = v.get_int64();
  return std::nullopt;
}

std::optional<std::string> read_field(std::string_view name, const boost::json::value& v, RulesConfig& c) {
  std::int64_t n = 0;
  if (name == "per_transaction_limit") return read_limit(name, v, c.per_transaction_limit_cents);
  if (name == "night_limit") return read_limit(name, v, c.night_limit_cents);
  if (name == "velocity_max_sum") return read_limit(name, v, c.velocity_max_sum_cents);
  if (name == "night_start_hour" || name == "night_end_hour") {
    if (auto err = read_integer(name, v, 0, 23, n)) return err;
    (name == "night_start_hour" ? c.night_start_hour : c.night_end_hour) = static_cast<int>(n);
    return std::nullopt;
  }
  if (name == "utc_offset_minutes") {
    // Real offsets run from UTC-12:00 to UTC+14:00.
    if (auto err = read_integer(name, v, std::int64_t{-12} * 60, std::int64_t{14} * 60, n)) return err;
    c.utc_offset_minutes = static_cast<int>(n);
    return std::nullopt;
  }
  if (name == "velocity_window_seconds") {
    if (auto err = read_integer(name, v, 1, std::int64_t{7} * 24 * 3600, n)) return err;
    c.velocity_window = std::chrono::seconds(n);
    return std::nullopt;
  }
  if (name == "velocity_max_count") {
    if (auto err = read_integer(name, v, 1, 1'000'000, n)) return err;
    c.velocity_max_count = static_cast<std::size_t>(n);
    return std::nullopt;
  }
  if (name == "dedupe_capacity") {
    if (auto err = read_integer(name, v, 0, 100'000'000, n)) return err;
    c.dedupe_capacity = static_cast<std::size_t>(n);
    return std::nullopt;
  }
  if (name == "blocked") {
    if (!v.is_array()) return std::string("blocked: must be an array of strings");
    c.blocked.clear();
    for (std::size_t i = 0; i < v.get_array().size(); ++i) {
      const auto& item = v.get_array()[i];
      if (!item.is_string() || item.get_string().empty()) {
        return "blocked[" + std::to_string(i) + "]: must be a non-empty string";
      }
      c.blocked.emplace(text(item.get_string()));
    }
    return std::nullopt;
  }
  if (name == "ispb") {
    if (!v.is_string() || !domain::is_valid_ispb(text(v.get_string()))) {
      return std::string("ispb: must be 8 characters [0-9A-Z]");
    }
    c.ispb = std::string(text(v.get_string()));
    return std::nullopt;
  }
  std::string known;
  for (auto f : kConfigFields) {
    if (!known.empty()) known += ", ";
    known += f;
  }
  return "unknown field '" + std::string(name) + "' (known: " + known + ")";
}

// --- request extraction ---

std::optional<std::string> required_string(const boost::json::object& value, std::string_view name, std::string& out) {
  const auto* v = given(value, name);
  if (v == nullptr) return std::string(name) + " is required";
  if (!v->is_string()) return std::string(name) + " must be a string";
  if (v->get_string().empty()) return std::string(name) + " must not be empty";
  out = std::string(text(v->get_string()));
  return std::nullopt;
}

std::optional<std::string> optional_string(const boost::json::object& value, std::string_view name,
                                           std::optional<std::string>& out) {
  const auto* v = given(value, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) return std::string(name) + " must be a string";
  out = std::string(text(v->get_string()));
  return std::nullopt;
}

// --- rules ---

Decision reject(Decision d, std::string_view code, std::string_view rule, std::string message) {
  d.approved = false;
  d.code = code;
  d.rule = rule;
  d.message = std::move(message);
  return d;
}

std::string two_digit_hour(int h) {
  return (h < 10 ? "0" : "") + std::to_string(h) + ":00";
}

}  // namespace

RulesConfigParse load_rules_config(std::string_view json_text) {
  boost::json::error_code ec;
  const boost::json::value doc = boost::json::parse(json_text, ec);
  if (ec) return config_error("rules file is not valid JSON: " + ec.message());
  if (!doc.is_object()) return config_error("rules file must be a JSON object");
  RulesConfig config;
  for (const auto& field : doc.get_object()) {
    if (auto err = read_field(field.key(), field.value(), config)) return config_error(std::move(*err));
  }
  RulesConfigParse out;
  out.config = std::move(config);
  return out;
}

std::variant<PaymentRequest, std::string> payment_request_from_json(const boost::json::object& value,
                                                                    std::string event_id,
                                                                    Clock::time_point event_time) {
  PaymentRequest r;
  r.event_id = std::move(event_id);
  r.event_time = event_time;

  // Integral ids are accepted as their decimal text, as the gateway does.
  const auto* id = given(value, "transactionId");
  if (id == nullptr) return std::string("transactionId is required");
  if (id->is_int64()) {
    r.transaction_id = std::to_string(id->get_int64());
  } else if (id->is_uint64()) {
    r.transaction_id = std::to_string(id->get_uint64());
  } else if (id->is_string() && !id->get_string().empty()) {
    r.transaction_id = std::string(text(id->get_string()));
  } else {
    return std::string("transactionId must be a non-empty string or an integer");
  }

  if (auto err = required_string(value, "payer", r.payer)) return std::move(*err);
  if (auto err = required_string(value, "receiver", r.receiver)) return std::move(*err);
  if (auto err = optional_string(value, "payerKey", r.payer_key)) return std::move(*err);
  if (auto err = optional_string(value, "receiverKey", r.receiver_key)) return std::move(*err);
  if (auto err = optional_string(value, "endToEndId", r.end_to_end_id)) return std::move(*err);

  if (const auto* type = given(value, "payerType")) {
    const std::string_view t = type->is_string() ? text(type->get_string()) : std::string_view{};
    if (t == "PF") {
      r.payer_type = PayerType::kIndividual;
    } else if (t == "PJ") {
      r.payer_type = PayerType::kCompany;
    } else {
      return std::string(R"(payerType must be "PF" or "PJ")");
    }
  }

  const auto* amount = value.if_contains("amount");
  r.amount = domain::parse_amount(amount != nullptr ? *amount : boost::json::value{});
  return r;
}

RuleEngine::RuleEngine(RulesConfig config) : config_(std::move(config)) {
  // A CPF or CNPJ may be listed or sent with or without punctuation: keep both forms.
  std::set<std::string, std::less<>> canonical;
  for (const auto& b : config_.blocked) canonical.insert(domain::canonical_key(b));
  config_.blocked.merge(canonical);
}

Decision RuleEngine::evaluate(const PaymentRequest& request, Clock::time_point now) {
  const bool remembers = config_.dedupe_capacity > 0 && !request.event_id.empty();
  if (remembers) {
    if (const auto it = decisions_.find(request.event_id); it != decisions_.end()) {
      const std::string& first = it->second.fingerprint;
      if (first.empty() || request.fingerprint.empty() || first == request.fingerprint) return it->second.decision;
      // Another payment under an id already decided: refused, never merged with the first.
      Decision d;
      d.amount_cents = request.amount.cents.value_or(0);
      d.end_to_end_id = request.end_to_end_id.value_or(it->second.decision.end_to_end_id);
      return reject(std::move(d), kCodeDuplicate, kRuleDuplicate,
                    "payment id " + request.event_id + " was already decided for a payment with other content");
    }
  }

  // Kafka reports a missing timestamp as -1 ms: any time up to the epoch means "unknown".
  const bool has_time = request.event_time > Clock::time_point{};
  const auto at = has_time && request.event_time <= now ? request.event_time : now;
  Decision d = judge(request, at);

  if (request.end_to_end_id && domain::is_valid_end_to_end_id(*request.end_to_end_id)) {
    d.end_to_end_id = *request.end_to_end_id;
  } else {
    // Event id and time are the same on every redelivery, so the made id is too.
    d.end_to_end_id = domain::make_end_to_end_id(config_.ispb, has_time ? request.event_time : now,
                                                 request.event_id.empty() ? request.transaction_id : request.event_id);
  }
  if (remembers) remember(request.event_id, d, request.fingerprint);
  sweep(at);
  return d;
}

void RuleEngine::restore(const PaymentRequest& request, const Decision& decision, Clock::time_point judged_at) {
  if (is_duplicate(decision)) return;  // an answer to a reused id, not the payment's decision
  if (config_.dedupe_capacity > 0 && !request.event_id.empty()) {
    if (decisions_.contains(request.event_id)) return;
    remember(request.event_id, decision, request.fingerprint);
  }
  if (decision.approved && decision.amount_cents > 0) admit(request.payer, judged_at, decision.amount_cents);
  sweep(judged_at);
}

Decision RuleEngine::judge(const PaymentRequest& request, Clock::time_point at) {
  Decision d;
  d.amount_cents = request.amount.cents.value_or(0);

  // 1-2. The amount.
  if (!request.amount) {
    if (request.amount.reason == domain::AmountError::kNegative) {
      return reject(std::move(d), kCodeZeroAmount, "positive_amount", "amount must be at least 0.01, not negative");
    }
    return reject(std::move(d), kCodeGeneric, "amount_format", "invalid amount: " + request.amount.error);
  }
  const std::int64_t cents = *request.amount.cents;
  if (cents <= 0) return reject(std::move(d), kCodeZeroAmount, "positive_amount", "amount must be at least 0.01");

  // 3. Blocked accounts and keys.
  const auto blocked = [&](std::string_view what, std::string_view id) {
    return reject(std::move(d), kCodeBlocked, "blocked", std::string(what) + " '" + std::string(id) + "' is blocked");
  };
  if (is_blocked(request.payer)) return blocked("payer", request.payer);
  if (is_blocked(request.receiver)) return blocked("receiver", request.receiver);
  if (request.payer_key && is_blocked(*request.payer_key)) return blocked("payerKey", *request.payer_key);
  if (request.receiver_key && is_blocked(*request.receiver_key)) return blocked("receiverKey", *request.receiver_key);

  // 4. Keys, when given.
  if (request.payer_key) {
    if (const auto check = domain::check_key(*request.payer_key); !check) {
      return reject(std::move(d), kCodeInvalidAccount, "payer_key", "payerKey: " + check.error);
    }
  }
  if (request.receiver_key) {
    if (const auto check = domain::check_key(*request.receiver_key); !check) {
      return reject(std::move(d), kCodeInvalidAccount, "receiver_key", "receiverKey: " + check.error);
    }
  }

  // 5-6. Limits on the single payment.
  if (cents > config_.per_transaction_limit_cents) {
    return reject(std::move(d), kCodeOverLimit, "per_transaction_limit",
                  "amount " + domain::format_amount(cents) + " is over the per-transaction limit of " +
                      domain::format_amount(config_.per_transaction_limit_cents));
  }
  if (request.payer_type == PayerType::kIndividual && cents > config_.night_limit_cents && is_night(at)) {
    return reject(std::move(d), kCodeOverLimit, "night_limit",
                  "amount " + domain::format_amount(cents) + " is over the night limit of " +
                      domain::format_amount(config_.night_limit_cents) + " for individuals (" +
                      two_digit_hour(config_.night_start_hour) + "-" + two_digit_hour(config_.night_end_hour) +
                      " local time)");
  }

  // 7. Velocity over the payer's approved payments. A window is created only on approval, so
  // payers who are only ever rejected take no memory.
  std::size_t count = 0;
  std::int64_t sum_cents = 0;
  if (const auto found = velocity_.find(request.payer); found != velocity_.end()) {
    PayerWindow& w = found->second;
    prune(w, std::max(at, w.payments.empty() ? at : w.payments.back().at));
    count = w.payments.size();
    sum_cents = w.sum_cents;
  }
  const std::string window_text = "in the last " + std::to_string(config_.velocity_window.count()) + " s";
  if (count + 1 > config_.velocity_max_count) {
    return reject(std::move(d), kCodeOverLimit, "velocity_count",
                  "payer already has " + std::to_string(count) + " payments " + window_text + " (limit " +
                      std::to_string(config_.velocity_max_count) + ")");
  }
  if (sum_cents + cents > config_.velocity_max_sum_cents) {
    return reject(std::move(d), kCodeOverLimit, "velocity_sum",
                  "payments " + window_text + " would total " + domain::format_amount(sum_cents + cents) +
                      ", over the limit of " + domain::format_amount(config_.velocity_max_sum_cents));
  }

  admit(request.payer, at, cents);
  d.approved = true;
  return d;
}

void RuleEngine::admit(const std::string& payer, Clock::time_point at, std::int64_t cents) {
  // Approved: the payment joins the payer's window, in time order (events may arrive a little
  // out of order across partitions).
  PayerWindow& w = velocity_[payer];
  const auto pos = std::upper_bound(w.payments.begin(), w.payments.end(), at,
                                    [](Clock::time_point t, const Payment& p) { return t < p.at; });
  w.payments.insert(pos, Payment{at, cents});
  w.sum_cents += cents;
}

bool RuleEngine::is_blocked(std::string_view id) const {
  if (config_.blocked.empty()) return false;
  return config_.blocked.find(id) != config_.blocked.end() ||
         config_.blocked.find(domain::canonical_key(id)) != config_.blocked.end();
}

bool RuleEngine::is_night(Clock::time_point at) const noexcept {
  using namespace std::chrono;
  const auto local = at + minutes(config_.utc_offset_minutes);
  const auto hour = floor<hours>(local - floor<days>(local)).count();
  const int start = config_.night_start_hour;
  const int end = config_.night_end_hour;
  if (start == end) return false;
  return start < end ? hour >= start && hour < end : hour >= start || hour < end;
}

void RuleEngine::prune(PayerWindow& window, Clock::time_point newest) const {
  // A payment exactly one window old has left the window.
  const auto cutoff = newest - config_.velocity_window;
  while (!window.payments.empty() && window.payments.front().at <= cutoff) {
    window.sum_cents -= window.payments.front().cents;
    window.payments.pop_front();
  }
}

void RuleEngine::sweep(Clock::time_point at) {
  // Payers who stopped paying would otherwise stay in memory forever; once per window, drop
  // every payment that has left it, judged by the latest time seen.
  latest_ = std::max(latest_, at);
  if (latest_ - last_sweep_ < config_.velocity_window) return;
  last_sweep_ = latest_;
  for (auto it = velocity_.begin(); it != velocity_.end();) {
    prune(it->second, latest_);
    it = it->second.payments.empty() ? velocity_.erase(it) : std::next(it);
  }
}

void RuleEngine::remember(const std::string& event_id, const Decision& decision, const std::string& fingerprint) {
  decisions_.emplace(event_id, Remembered{decision, fingerprint});
  decision_order_.push_back(event_id);
  while (decision_order_.size() > config_.dedupe_capacity) {
    decisions_.erase(decision_order_.front());
    decision_order_.pop_front();
  }
}

}  // namespace pix::antifraud
