#include "pix/audit/audit_anchor.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <vector>

namespace pix::audit {
namespace {

namespace json = boost::json;

std::string describe(const AuditAnchor& anchor) {
  return anchor.origin + " announced seq " + std::to_string(anchor.seq) + " (hash " + anchor.hash + ")";
}

}  // namespace

std::optional<AuditAnchor> parse_anchor(std::string_view value) {
  json::error_code ec;
  const json::value v = json::parse(value, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto* seq = v.as_object().if_contains("seq");
  const auto* hash = v.as_object().if_contains("hash");
  // A positive seq fits int64 (json::parse makes uint64 only of what does not).
  if (!seq || !seq->is_int64() || seq->as_int64() < 1) return std::nullopt;
  if (!hash || !hash->is_string() || hash->as_string().empty()) return std::nullopt;
  AuditAnchor anchor;
  anchor.seq = seq->as_int64();
  anchor.hash = std::string(hash->as_string());
  return anchor;
}

AnchorVerdict check_anchor(AuditStore& store, const std::optional<AuditAnchor>& anchor) {
  AnchorVerdict verdict;
  const std::optional<AuditEntry> last = store.last();
  verdict.chain_end = last ? last->seq : 0;
  if (!anchor) {
    verdict.detail = "no anchor: nothing announced yet, the chain is only as good as its file";
    return verdict;
  }
  if (verdict.chain_end < anchor->seq) {
    verdict.ok = false;
    verdict.status = AnchorStatus::kTruncated;
    verdict.detail = (last ? "the chain ends at seq " + std::to_string(verdict.chain_end) : "the chain is empty") +
                     " but " + describe(*anchor);
    return verdict;
  }
  // seqs run without gaps (verify() checks it), so the first entry at or after it is the one, if
  // it is there at all.
  const std::vector<AuditEntry> at = store.entries(anchor->seq, 1);
  if (at.empty() || at.front().seq != anchor->seq) {
    verdict.ok = false;
    verdict.status = AnchorStatus::kTruncated;
    verdict.detail = "the chain has no entry at seq " + std::to_string(anchor->seq) + " but " + describe(*anchor);
    return verdict;
  }
  if (at.front().hash != anchor->hash) {
    verdict.ok = false;
    verdict.status = AnchorStatus::kDiverged;
    verdict.detail = "the entry at seq " + std::to_string(anchor->seq) + " differs from the one announced on " +
                     anchor->origin + ": its hash is " + at.front().hash + ", the announced one " + anchor->hash;
    return verdict;
  }
  verdict.status = AnchorStatus::kReached;
  verdict.past_anchor = static_cast<std::size_t>(verdict.chain_end - anchor->seq);
  verdict.detail = "the entry at seq " + std::to_string(anchor->seq) + " is the one " + anchor->origin +
                   " announced; " + std::to_string(verdict.past_anchor) +
                   (verdict.past_anchor == 1 ? " entry" : " entries") + " past it (appended after the announcement)";
  return verdict;
}

}  // namespace pix::audit
