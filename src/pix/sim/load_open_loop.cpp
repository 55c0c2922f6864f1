// The open-loop half of a Shard: the pacer turns the rate's tickets into requests waiting for a
// connection of their endpoint, and the pools hand them out, opening more connections while
// requests wait. Latency counts from each ticket's intended time, so a stalled server shows.
#include "pix/sim/load_shard.hpp"

#include <algorithm>

namespace pix::sim::detail {

namespace {

// Requests an open-loop shard builds ahead and holds while they wait for a connection. Past this,
// due tickets stay in the queue (keeping their intended time, so their latency is still honest):
// a stalled server costs no memory.
constexpr std::size_t kMaxWaiting = 65536;
// Most connects in progress at once per endpoint (and thread). A hiccup of a few ms leaves a
// burst of requests waiting; opening one connection for each would leave hundreds of
// connections behind for a backlog that clears by itself. A few at a time still follows a server
// that stays slow, since every finished connect that finds requests still waiting opens the next.
constexpr std::size_t kMaxConcurrentConnects = 8;

}  // namespace

void Shard::warm_up_open_loop() {
  const auto initial = share(static_cast<std::size_t>(options_.concurrency), index_, shards_);
  for (std::size_t e = 0; e < pools_.size(); ++e) {
    for (std::size_t i = 0; i < std::min(initial, pools_[e].cap); ++i) {
      Connection* c = add_connection(e);
      pools_[e].idle.push_back(c);
      spawn(connect(*c));
    }
  }
}

void Shard::start_open_loop(Clock::time_point start) {
  queue_.emplace(RateSchedule(options_.rate, start), options_.count, index_, shards_);
  spawn(pace());
}

Connection* Shard::add_connection(std::size_t endpoint) {
  auto& pool = pools_[endpoint];
  pool.all.push_back(std::make_unique<Connection>(io_, endpoint));
  return pool.all.back().get();
}

asio::awaitable<void> Shard::pace() {
  while (issuing_) {
    const auto now = Clock::now();
    if (now >= deadline_) {
      stop_issuing(last_due_);
      break;
    }
    admit(now);
    dispatch();
    if (queue_->exhausted()) break;  // with a count: what waits goes out as connections come free
    // With the waiting line full, completions admit more; they wake this loop when there is room.
    pacer_parked_ = waiting_total_ >= kMaxWaiting;
    pace_timer_.expires_at(pacer_parked_ ? deadline_ : std::min(queue_->next_due(), deadline_));
    co_await pace_timer_.async_wait(kTuple);
    pacer_parked_ = false;
  }
}

void Shard::admit(Clock::time_point now) {
  if (!issuing_) return;
  now = std::min(now, last_due_);
  while (waiting_total_ < kMaxWaiting) {
    auto ticket = queue_->take(now);
    if (!ticket) break;
    RequestSpec spec = next_spec(ticket->seq);
    auto& pool = pools_[spec.endpoint];
    pool.waiting.push_back(Pending{*ticket, std::move(spec)});
    ++waiting_total_;
  }
}

void Shard::dispatch() {
  for (std::size_t e = 0; e < pools_.size(); ++e) {
    Pool& pool = pools_[e];
    while (!pool.waiting.empty() && !pool.idle.empty()) {
      Connection* c = pool.idle.back();  // the most recently used: likely still open
      pool.idle.pop_back();
      Pending job = std::move(pool.waiting.front());
      pool.waiting.pop_front();
      --waiting_total_;
      spawn(send_open_loop(c, std::move(job)));
    }
    // Requests wait: open more connections (up to the cap) rather than letting the rate sag; the
    // wait so far is charged to those requests anyway.
    while (pool.connecting < std::min(pool.waiting.size(), kMaxConcurrentConnects) && pool.all.size() < pool.cap) {
      ++pool.connecting;
      spawn(grow(add_connection(e)));
    }
  }
}

asio::awaitable<void> Shard::grow(Connection* c) {
  // A failed connect is nobody's request yet: the connection joins the idle ones closed, and the
  // request that takes it tries again (and is charged with the failure).
  co_await connect(*c);
  Pool& pool = pools_[c->endpoint];
  --pool.connecting;
  pool.idle.push_back(c);
  dispatch();
}

asio::awaitable<void> Shard::send_open_loop(Connection* c, Pending job) {
  note_sent(Clock::now() - job.ticket.intended);
  Request req = make_request(job.spec);
  const Outcome o = co_await exchange(*c, req);
  const auto done = Clock::now();
  record(job.ticket.seq, job.spec.label, o, open_loop_latency(job.ticket, done));
  pools_[c->endpoint].idle.push_back(c);
  // With a count the pacer may be gone already; the end of the run still ends the waiting.
  if (issuing_ && done >= deadline_) stop_issuing(last_due_);
  admit(done);
  dispatch();
  if (pacer_parked_ && waiting_total_ < kMaxWaiting) pace_timer_.cancel();
}

void Shard::stop_issuing(Clock::time_point at) {
  if (!issuing_) return;
  issuing_ = false;
  std::uint64_t dropped = 0;
  for (auto& pool : pools_) {
    dropped += pool.waiting.size();
    pool.waiting.clear();
  }
  waiting_total_ = 0;
  if (queue_) dropped += queue_->due_untaken(std::min(at, last_due_));
  std::lock_guard lock(stats_mutex_);
  stats_.unsent += dropped;
}

}  // namespace pix::sim::detail
