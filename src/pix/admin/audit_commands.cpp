#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "pix/admin/commands.hpp"
#include "pix/audit/audit_anchor.hpp"
#include "pix/audit/audit_store.hpp"
#include "pix/kafka/partition_reader.hpp"
#include "pix/ledger/ledger.hpp"
#include "pix/saga/report.hpp"
#include "pix/security/decision_signature.hpp"
#include "pix/util/text.hpp"

namespace pix::admin {

// Writes a new decision key for the stage to the file (0600, never over an existing file).
int run_decision_key(const DecisionKeyConfig& config) {
  const std::string& stage = config.stage;
  const std::string& path = config.out;
  const std::string doc = security::generate_decision_key_json(stage);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    std::fprintf(stderr, "pix-admin: %s: %s%s\n", path.c_str(), util::errno_text(err).c_str(),
                 err == EEXIST ? " (a key is never overwritten: remove it first to replace it)" : "");
    return 1;
  }
  const bool written = ::write(fd, doc.data(), doc.size()) == static_cast<ssize_t>(doc.size());
  if (::close(fd) != 0 || !written) {
    std::fprintf(stderr, "pix-admin: %s: write failed\n", path.c_str());
    ::unlink(path.c_str());
    return 1;
  }
  std::printf("%s: decision key %s of stage %s\n", path.c_str(), security::parse_decision_key(doc).kid.c_str(),
              stage.c_str());
  return 0;
}

namespace {

/// The anchor announced on `topic`: of the last record of each partition, the one with the
/// highest seq (records that announce nothing are skipped). Nullopt when nothing is announced.
/// Throws std::runtime_error naming the topic when it cannot be read (unreachable, not
/// authorized, no such topic): "could not read" must never pass for "nothing announced".
std::optional<audit::AuditAnchor> read_anchor(const KafkaTarget& cluster, const std::string& topic) {
  kafka::ReaderOptions options;
  options.bootstrap_servers = cluster.bootstrap;
  options.client_id = "pix-admin";
  options.extra = cluster.properties;
  kafka::PartitionReader reader(std::move(options));
  std::optional<audit::AuditAnchor> best;
  const std::int32_t partitions = reader.partition_count(topic);
  for (std::int32_t p = 0; p < partitions; ++p) {
    const kafka::Watermarks w = reader.watermarks(topic, p);
    if (w.high <= w.low) continue;  // empty, or retention dropped everything
    reader.read(topic, p, w.high - 1, w.high, [&](const kafka::ConsumedRecord& r) {
      auto anchor = audit::parse_anchor(r.value);
      if (!anchor) return;
      anchor->origin =
          topic + " (partition " + std::to_string(r.partition) + ", offset " + std::to_string(r.offset) + ")";
      if (!best || anchor->seq > best->seq) best = std::move(anchor);
    });
  }
  return best;
}

}  // namespace

int run_verify_audit(const VerifyAuditConfig& config) {
  // The anchor before the store: the auditor appends an entry before it announces it, so the
  // store read afterwards holds every entry announced so far, even while the auditor runs.
  std::optional<audit::AuditAnchor> anchor;
  if (config.anchor) {
    try {
      anchor = read_anchor(*config.anchor, config.anchor_topic);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pix-admin: cannot read the audit chain's anchor on %s, the tail is unchecked: %s\n",
                   config.anchor_topic.c_str(), e.what());
      return 1;
    }
  }
  audit::AuditStore store(config.audit_db);
  const auto r = store.verify([](std::size_t done) { std::fprintf(stderr, "  ... %zu entries verified\n", done); });
  if (!r.ok) {
    std::printf("audit chain BROKEN at seq %lld: %s (%zu entries before it are intact)\n",
                static_cast<long long>(r.first_broken_seq.value_or(-1)), r.reason.c_str(), r.entries);
    return 3;
  }
  if (!config.anchor) {
    std::printf("audit chain OK: %zu entries\n", r.entries);
    return 0;
  }
  const audit::AnchorVerdict v = audit::check_anchor(store, anchor);
  switch (v.status) {
    case audit::AnchorStatus::kNoAnchor:
      std::printf("audit chain OK: %zu entries; no anchor yet: %s announces no entry (checked as a file only)\n",
                  r.entries, config.anchor_topic.c_str());
      return 0;
    case audit::AnchorStatus::kReached:
      std::printf("audit chain OK: %zu entries, anchored: %s\n", r.entries, v.detail.c_str());
      return 0;
    case audit::AnchorStatus::kTruncated:
      std::printf("audit chain TRUNCATED: %s (its %zu entries are intact)\n", v.detail.c_str(), r.entries);
      return 3;
    case audit::AnchorStatus::kDiverged:
      std::printf("audit chain REWRITTEN: %s\n", v.detail.c_str());
      return 3;
  }
  return 3;
}

int run_report(const ReportConfig& config) {
  audit::AuditStore store(config.audit_db);
  std::unique_ptr<ledger::Ledger> ledger;
  if (!config.ledger_db.empty()) ledger = std::make_unique<ledger::Ledger>(config.ledger_db);
  const auto r = saga::build_report(store, ledger.get());
  std::fputs((config.json ? saga::report_json(r) + "\n" : saga::render_report(r)).c_str(), stdout);
  const bool ok = r.chain_valid && (!r.total_balance || *r.total_balance == 0);
  return ok ? 0 : 3;
}

}  // namespace pix::admin
