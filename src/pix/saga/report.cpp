#include "pix/saga/report.hpp"

#include <fmt/format.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace pix::saga {
namespace {

namespace json = boost::json;

std::string field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string reason_of(const json::object& o) {
  const auto* r = o.if_contains("reason");
  if (!r || !r->is_object()) return "unknown";
  return field(r->as_object(), "code") + " " + field(r->as_object(), "rule");
}

}  // namespace

SagaReport build_report(audit::AuditStore& audit, ledger::Ledger* ledger) {
  SagaReport r;
  std::int64_t from = 1;
  for (;;) {
    const auto page = audit.entries(from, 5000);
    if (page.empty()) break;
    for (const auto& e : page) {
      ++r.audited;
      from = e.seq + 1;
      json::error_code ec;
      auto v = json::parse(e.payload, ec);
      if (ec || !v.is_object()) continue;
      const auto& o = v.as_object();
      const auto& src = e.source;
      if (src.ends_with("pix.payment.requested")) {
        ++r.requested;
      } else if (src.ends_with("pix.payment.validated")) {
        const auto status = field(o, "status");
        if (status == "validated") ++r.validated;
        if (status == "rejected") {
          ++r.rejected_at_validation;
          ++r.rejected_by_reason[reason_of(o)];
        }
      } else if (src.ends_with("pix.payment.settled")) {
        const auto status = field(o, "status");
        if (status == "settled") ++r.settled;
        if (status == "rejected") {
          ++r.rejected_at_settlement;
          ++r.rejected_by_reason[reason_of(o)];
        }
      } else if (src.ends_with("pix.notification.sent")) {
        const auto status = field(o, "status");
        if (status == "notified") ++r.notified;
        if (status == "rejected") ++r.notified_rejections;
      }
    }
  }
  const auto verified = audit.verify();
  r.chain_valid = verified.ok;
  r.chain_detail = verified.ok
                       ? fmt::format("{} entries verified", verified.entries)
                       : fmt::format("broken at seq {}: {}", verified.first_broken_seq.value_or(-1), verified.reason);
  if (ledger) {
    r.total_balance = ledger->total_balance();
    r.ledger_payments = ledger->payment_count();
    r.ledger_postings = ledger->posting_count();
  }
  return r;
}

std::string render_report(const SagaReport& r) {
  std::string out;
  out += fmt::format("  {:<34}{:>10}\n", "payments requested", r.requested);
  out += fmt::format("  {:<34}{:>10}\n", "validated by anti-fraud", r.validated);
  out += fmt::format("  {:<34}{:>10}\n", "rejected by anti-fraud", r.rejected_at_validation);
  out += fmt::format("  {:<34}{:>10}\n", "settled (ledger posted)", r.settled);
  out += fmt::format("  {:<34}{:>10}\n", "rejected at settlement", r.rejected_at_settlement);
  out += fmt::format("  {:<34}{:>10}\n", "notified (RabbitMQ)", r.notified);
  if (r.notified_rejections)
    out += fmt::format("  {:<34}{:>10}\n", "duplicates notified (AM05)", r.notified_rejections);
  out += fmt::format("  {:<34}{:>10}\n", "events in the audit chain", r.audited);
  if (!r.rejected_by_reason.empty()) {
    out += "  rejections by reason:\n";
    for (const auto& [reason, n] : r.rejected_by_reason) out += fmt::format("    {:<32}{:>10}\n", reason, n);
  }
  if (r.total_balance) {
    out += fmt::format("  balances conserved: {} (sum of all accounts = {}; {} payments, {} postings)\n",
                       *r.total_balance == 0 ? "yes" : "NO", *r.total_balance, r.ledger_payments, r.ledger_postings);
  }
  out += fmt::format("  audit chain valid: {} ({})\n", r.chain_valid ? "yes" : "NO", r.chain_detail);
  return out;
}

std::string report_json(const SagaReport& r) {
  json::object o;
  o["requested"] = r.requested;
  o["validated"] = r.validated;
  o["rejectedAtValidation"] = r.rejected_at_validation;
  o["settled"] = r.settled;
  o["rejectedAtSettlement"] = r.rejected_at_settlement;
  o["notified"] = r.notified;
  o["notifiedRejections"] = r.notified_rejections;
  o["audited"] = r.audited;
  json::object reasons;
  for (const auto& [k, n] : r.rejected_by_reason) reasons[k] = n;
  o["rejectedByReason"] = std::move(reasons);
  o["chainValid"] = r.chain_valid;
  o["chainDetail"] = r.chain_detail;
  if (r.total_balance) {
    o["totalBalanceCents"] = *r.total_balance;
    o["balancesConserved"] = *r.total_balance == 0;
  }
  return json::serialize(o);
}

}  // namespace pix::saga
