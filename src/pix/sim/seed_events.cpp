#include "pix/sim/seed_events.hpp"

#include <string>

#include "pix/sim/key_generator.hpp"

namespace pix::sim {
namespace {

// Sub-stream of the seed for the choice of event (the payment source uses others).
constexpr std::uint64_t kSeedEventStream = 4;

}  // namespace

const std::array<SeedEvent, 5> kSeedEvents = {{
    {"pix.payment.requested",
     R"({"topic": "pix.payment.requested", "value": {"transactionId": "tx123", "amount": 100, )"
     R"("payer": "Alice", "receiver": "Bob"}})"},
    {"pix.payment.validated",
     R"({"topic": "pix.payment.validated", "value": {"transactionId": "tx123", "status": "validated"}})"},
    {"pix.payment.settled",
     R"({"topic": "pix.payment.settled", "value": {"transactionId": "tx123", "status": "settled"}})"},
    {"pix.notification.sent",
     R"({"topic": "pix.notification.sent", "value": {"transactionId": "tx123", "status": "notified"}})"},
    {"pix.audit.log", R"({"topic": "pix.audit.log", "value": {"transactionId": "tx123", "action": "completed"}})"},
}};

RequestSource make_seed_source(std::uint64_t seed) {
  const std::uint64_t stream_seed = derive_seed(seed, kSeedEventStream);
  return [stream_seed](std::uint64_t seq) {
    Rng rng(derive_seed(stream_seed, seq));
    const SeedEvent& event = kSeedEvents[uniform_below(rng, kSeedEvents.size())];
    // The seed's rule: `KAFKA_URL if 'payment' in event["topic"] else RABBIT_URL`.
    const bool to_kafka = event.topic.find("payment") != std::string_view::npos;
    RequestSpec spec;
    spec.endpoint = to_kafka ? 0 : 1;
    spec.target = to_kafka ? "/kafka" : "/rabbit";
    spec.body = std::string(event.body);
    spec.label = std::string(event.topic);
    return spec;
  };
}

}  // namespace pix::sim
