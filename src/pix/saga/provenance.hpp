#pragma once
/// @file Provenance at a stage's boundary: records in are verified as decisions of the stage
/// that owns the step before (settlement acts only on anti-fraud's, the notifier only on
/// settlement's), and Kafka outputs are signed with the stage's own key. docs/provenance.md.

#include <memory>
#include <optional>
#include <string>

#include "pix/saga/stage.hpp"
#include "pix/security/decision_signature.hpp"
#include "pix/telemetry/metrics.hpp"

namespace pix::saga {

/// @brief What a stage signs with and whose signatures it requires (either may be absent).
struct Provenance {
  std::optional<security::DecisionKey> sign;         ///< this stage's key: every Kafka output is signed
  std::optional<security::DecisionVerifier> verify;  ///< the upstream stage's keys: every input must verify
};

/// The `pix-signature` of an outbound event: over its topic, key, id and payload.
std::string signature_of(const security::DecisionKey& key, const broker::OutboundEvent& event);

/// Why `record` is not a decision `verifier` accepts (nothing when it is): its `pix-signature`
/// over its topic, key, `ce_id` and value.
std::optional<security::SignatureError> verify_record(const security::DecisionVerifier& verifier,
                                                      const kafka::ConsumedRecord& record);

/// Wraps a handler: an input that does not verify is poison (dead-lettered with the reason,
/// counted in pix_saga_provenance_refused_total{stage,reason}) and never reaches `inner`;
/// the Kafka outputs of `inner` get a `pix-signature` header. Apply after the topic prefix,
/// so that what is signed is the topic the record goes to.
Handler with_provenance(std::shared_ptr<const Provenance> provenance, const std::string& stage, Handler inner,
                        telemetry::Registry& metrics);

}  // namespace pix::saga
