#pragma once
/// @file How a load run is shown: a table for people, JSON for scripts. Both carry the same numbers.

#include <boost/json/object.hpp>

#include <string>

#include "pix/sim/load_engine.hpp"

namespace pix::sim {

/// A table: mode, requests sent/answered/unsent, status codes, transport errors by kind,
/// throughput, latency p50/p90/p99/p99.9/max/mean in ms with 2 decimals (2xx, all answers, and in
/// open loop the send delay), connections and the generator's CPU. Ends with a newline.
std::string render_table(const LoadResult& result);

/// A histogram's numbers in microseconds: count, min, p50, p90, p99, p99.9, max, mean.
boost::json::object latency_json(const LatencyHistogram& histogram);

/// One JSON object with the same numbers; latencies in microseconds, under "latency_us".
std::string render_json(const LoadResult& result);

}  // namespace pix::sim
