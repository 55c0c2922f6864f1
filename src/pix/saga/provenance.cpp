#include "pix/saga/provenance.hpp"

#include <array>

namespace pix::saga {
namespace {
const std::string kSignatureHeaderName(security::kSignatureHeader);  // header() takes a std::string
}  // namespace

std::string signature_of(const security::DecisionKey& key, const broker::OutboundEvent& event) {
  return security::sign_decision(key, security::signing_input(event.topic, event.key, event.id, event.payload));
}

std::optional<security::SignatureError> verify_record(const security::DecisionVerifier& verifier,
                                                      const kafka::ConsumedRecord& record) {
  return verifier.verify(record.header(kSignatureHeaderName),
                         security::signing_input(record.topic, record.key, record.header("ce_id"), record.value));
}

Handler with_provenance(std::shared_ptr<const Provenance> provenance, const std::string& stage, Handler inner,
                        telemetry::Registry& metrics) {
  if (!provenance || (!provenance->sign && !provenance->verify)) return inner;
  using security::SignatureError;
  // One counter per reason, made up front: the hot path only increments.
  std::array<telemetry::Counter*, 5> refused{};
  constexpr std::array kReasons{SignatureError::kMissing, SignatureError::kMalformed, SignatureError::kUnknownKey,
                                SignatureError::kWrongStage, SignatureError::kBadSignature};
  for (const auto reason : kReasons) {
    refused[static_cast<std::size_t>(reason)] =
        &metrics.counter("pix_saga_provenance_refused_total",
                         "Records refused because they are not a verified decision of the stage before",
                         {{"stage", stage}, {"reason", std::string(security::to_string(reason))}});
  }
  return [provenance = std::move(provenance), inner = std::move(inner),
          refused](const kafka::ConsumedRecord& record) -> HandlerResult {
    if (provenance->verify) {
      if (const auto error = verify_record(*provenance->verify, record)) {
        refused[static_cast<std::size_t>(*error)]->inc();
        HandlerResult r;
        r.poison_reason = "provenance: " + std::string(security::to_string(*error)) + ": not a decision signed by " +
                          provenance->verify->required_stage() + "; not acted on";
        return r;
      }
    }
    HandlerResult result = inner(record);
    if (provenance->sign) {
      for (auto& o : result.outputs) {
        if (o.sink != Sink::kKafka) continue;
        o.event.headers.push_back({kSignatureHeaderName, signature_of(*provenance->sign, o.event)});
      }
    }
    return result;
  };
}

}  // namespace pix::saga
