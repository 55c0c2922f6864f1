#pragma once
/// @file A small Prometheus registry: lock-free updates, text exposition format 0.0.4.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pix::telemetry {

using Labels = std::vector<std::pair<std::string, std::string>>;

/// @brief Monotonic counter.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// @brief Cumulative histogram with fixed upper bounds (seconds, for latencies).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  /// Non-cumulative count of bucket i (i == bounds().size() is +Inf).
  std::uint64_t bucket(std::size_t i) const noexcept { return counts_[i].load(std::memory_order_relaxed); }
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

/// Latency buckets from 100 µs to 10 s.
std::vector<double> latency_buckets();

/// @brief Owns every metric of a process; references it hands out stay valid for its lifetime.
class Registry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels = {},
                       std::vector<double> bounds = latency_buckets());
  /// A gauge read when scraped.
  void gauge(const std::string& name, const std::string& help, const Labels& labels, std::function<double()> read);
  /// A counter kept elsewhere (a process-wide atomic, say), read when scraped; `read` must be
  /// monotonic.
  void counter(const std::string& name, const std::string& help, const Labels& labels,
               std::function<std::uint64_t()> read);

  /// Announce a family before its first series exists, so that it is exported (HELP/TYPE)
  /// from the start and its name is part of family_names(). `type`: counter, gauge, histogram.
  void describe(const std::string& name, const std::string& help, const std::string& type);

  /// The exposition text for GET /metrics.
  std::string render() const;
  /// Names of every family registered so far (for the exported-names check).
  std::vector<std::string> family_names() const;

 private:
  struct Series {
    std::string labels;  // rendered `{a="b",...}` or empty
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> read;  ///< a gauge, or a counter kept elsewhere
  };
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, Series> series;  // by rendered labels
  };
  Series& series(const std::string& name, const std::string& help, const char* type, const Labels& labels);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

/// `pix_build_info{service,version} 1` and `pix_invariant_violations_total` (util/invariant.hpp),
/// which every process exports.
void register_build_info(Registry& registry, const std::string& service);

}  // namespace pix::telemetry
