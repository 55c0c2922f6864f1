// The closed-loop half of a Shard: each worker keeps one request in flight, on its own
// connection to each endpoint, and sends the next as soon as the previous one is answered.
#include "pix/sim/load_shard.hpp"

namespace pix::sim::detail {

namespace {

// A worker whose connect failed waits this long before its next request, so a server that is
// down does not turn the generator into a busy loop counting millions of refusals.
constexpr auto kConnectRetryDelay = std::chrono::milliseconds(50);

}  // namespace

void Shard::warm_up_closed_loop() {
  workers_.resize(share(static_cast<std::size_t>(options_.concurrency), index_, shards_));
  for (auto& worker : workers_) {
    for (std::size_t e = 0; e < addresses_.size(); ++e) {
      worker.push_back(std::make_unique<Connection>(io_, e));
      spawn(connect(*worker.back()));
    }
  }
}

void Shard::start_closed_loop() {
  for (std::size_t w = 0; w < workers_.size(); ++w) spawn(work(w));
}

asio::awaitable<void> Shard::work(std::size_t w) {
  asio::steady_timer backoff(io_);
  const std::uint64_t count = options_.count;
  for (;;) {
    if (stopping_ || Clock::now() >= deadline_) break;
    const std::uint64_t seq = shared_.next_seq.fetch_add(1);
    if (count != 0 && seq >= count) break;
    RequestSpec spec = next_spec(seq);
    Connection& c = *workers_[w][spec.endpoint];
    Request req = make_request(spec);
    const auto sent_at = Clock::now();
    note_sent(std::nullopt);
    const Outcome o = co_await exchange(c, req);
    record(seq, spec.label, o, Clock::now() - sent_at);
    // A refused connect or a failed handshake fails again at once: do not spin on it.
    if (o.error == TransportError::kConnectRefused || o.error == TransportError::kConnectFailed ||
        o.error == TransportError::kTls) {
      backoff.expires_after(kConnectRetryDelay);
      co_await backoff.async_wait(kTuple);
    }
  }
}

}  // namespace pix::sim::detail
