#pragma once
/// @file Spans, the tracer that starts them and the batch exporter that ships them over
/// OTLP/HTTP. The request path only ever appends a finished span to a bounded queue under a
/// short lock; a background thread encodes and sends batches. When the backend is slow or down
/// the queue fills and further spans are dropped and counted, never waited for.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "pix/telemetry/metrics.hpp"
#include "pix/telemetry/otlp.hpp"
#include "pix/telemetry/tracing_config.hpp"

namespace pix::telemetry {

/// @brief What one export attempt came to: an HTTP status (0 when none came back), the
/// Retry-After header, the answer's body, or why nothing was answered.
struct ExportAttempt {
  int status = 0;
  std::string retry_after;
  std::string body;
  std::string error;
};

/// Sends one encoded ExportTraceServiceRequest. The real one POSTs to the OTLP endpoint; unit
/// tests give a fake.
using ExportTransport = std::function<ExportAttempt(const std::string& body)>;

/// The OTLP/HTTP transport `config` describes (endpoint, headers, CA file, timeout).
ExportTransport http_transport(const TracingConfig& config);

/// @brief The batch span processor: bounded queue, one background thread, retries as the OTLP
/// specification says (429, 502, 503, 504 and no answer are retried with exponential backoff,
/// honouring Retry-After; any other status is final), drops counted by reason in
/// `pix_trace_spans_dropped_total{reason=queue_full|export_failed|rejected}`.
class BatchExporter {
 public:
  struct Options {
    std::size_t max_queue = 2048;
    std::size_t max_batch = 512;
    std::chrono::milliseconds schedule_delay{5000};
    /// Attempts per batch before it is dropped as export_failed.
    int max_attempts = 5;
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{30'000};
  };
  BatchExporter(Options options, Resource resource, ExportTransport transport, Registry* metrics);
  ~BatchExporter();  ///< exports what is queued (one attempt, bounded by the transport's timeout)
  BatchExporter(const BatchExporter&) = delete;
  BatchExporter& operator=(const BatchExporter&) = delete;

  /// Queues a finished span, encoded (append_span_json); false (and counted) when the queue is
  /// full. Never blocks on I/O.
  bool enqueue(std::string span_json);
  bool enqueue(const SpanData& span);
  /// Exports everything queued now, waiting at most `bound`. True if the queue was emptied.
  bool flush(std::chrono::milliseconds bound);

  std::uint64_t exported() const noexcept { return exported_->value(); }
  std::uint64_t dropped() const noexcept;
  std::size_t queued() const;

 private:
  void run();
  /// Sends one batch, with retries while `retry` allows; returns when it is settled.
  void export_batch(std::vector<std::string>& batch, bool retry);

  Options options_;
  Resource resource_;
  ExportTransport transport_;
  Registry own_metrics_;  // when the caller gives none
  Counter* exported_;
  Counter* dropped_queue_full_;
  Counter* dropped_export_failed_;
  Counter* dropped_rejected_;
  Counter* export_requests_failed_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // the worker: a full batch, a flush, or stop
  std::condition_variable flushed_;  // flush(): the worker went idle with an empty queue
  std::vector<std::string> queue_;   // encoded spans
  bool stop_ = false;
  std::uint64_t flush_requests_ = 0;
  std::uint64_t flush_done_ = 0;
  std::thread thread_;
};

class Tracer;

/// @brief One span. A span that is not sampled (or made by a disabled tracer) records nothing
/// but still has a context, so that `traceparent` propagates. Ends when end() is called or it
/// is destroyed; setters on an ended or non-recording span do nothing.
class Span {
 public:
  Span() = default;
  Span(Span&& other) noexcept;
  Span& operator=(Span&& other) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span();

  const TraceContext& context() const noexcept { return context_; }
  bool recording() const noexcept { return recording_; }
  /// A context exists (a default-constructed Span has none).
  bool valid() const noexcept { return !context_.trace_id.empty(); }

  /// Records an attribute (encoded as OTLP/JSON at once: one append, no allocation of its own).
  /// Integers are std::int64_t: another integer type does not compile, rather than turn into a bool.
  Span& set(std::string_view key, std::string_view value);
  Span& set(std::string_view key, const char* value) { return set(key, std::string_view(value)); }
  Span& set(std::string_view key, const std::string& value) { return set(key, std::string_view(value)); }
  Span& set(std::string_view key, std::int64_t value);
  Span& set(std::string_view key, bool value);
  Span& set(std::string_view key, double value);
  /// Status ERROR with `message` (an HTTP 5xx, a refused output, a dead-lettered record).
  Span& set_error(std::string_view message);
  Span& add_link(const TraceContext& context);
  /// A span under this one, from the same tracer (a no-op span for an invalid one).
  Span child(std::string_view name, SpanKind kind = SpanKind::kInternal) const;
  void end();

 private:
  friend class Tracer;
  void move_from(Span& other) noexcept;

  TraceContext context_;
  Tracer* tracer_ = nullptr;
  // While recording, the span is written as it goes (OTLP/JSON, attribute list open): one buffer,
  // one allocation, handed to the exporter as it is at end().
  bool recording_ = false;
  std::string json_;
  std::size_t attributes_mark_ = 0;
  std::vector<TraceContext> links_;
  SpanStatus status_ = SpanStatus::kUnset;
  std::string status_message_;
};

/// @brief Starts spans, decides sampling, hands finished spans to the exporter. A
/// default-constructed Tracer is disabled: its spans propagate context and record nothing.
class Tracer {
 public:
  Tracer() = default;
  /// Enabled when `config.enabled`; `transport` null means http_transport(config).
  Tracer(const TracingConfig& config, Registry* metrics, ExportTransport transport = nullptr);
  ~Tracer();

  bool enabled() const noexcept { return exporter_ != nullptr; }
  /// A span under `parent` (a new trace without one), sampled as the sampler says.
  Span start(std::string_view name, SpanKind kind, const std::optional<TraceContext>& parent);
  /// Exports what is queued, waiting at most `bound` (at shutdown).
  bool flush(std::chrono::milliseconds bound);
  BatchExporter* exporter() noexcept { return exporter_.get(); }

 private:
  friend class Span;
  void finish(std::string&& span_json);

  Sampler sampler_{1.0, true};
  std::unique_ptr<BatchExporter> exporter_;
};

/// The process's tracer as the OTEL_* environment configures it, logging what it does (off, or
/// where spans go and how they are sampled); service.instance.id is `<host>-<pid>`. Throws
/// std::invalid_argument naming the variable when a setting cannot be used.
std::unique_ptr<Tracer> tracer_from_env(std::string_view service, Registry& metrics);

/// Registers the tracing metric families (so that they are exported even with tracing off).
void describe_tracing_metrics(Registry& metrics);

/// @brief Makes `span` the thread's active span for the scope: child_span() parents on it and
/// every log line written meanwhile carries its trace_id and span_id. Not across co_await.
class ActiveSpan {
 public:
  explicit ActiveSpan(const Span& span) noexcept;
  ~ActiveSpan();
  ActiveSpan(const ActiveSpan&) = delete;
  ActiveSpan& operator=(const ActiveSpan&) = delete;

 private:
  const Span* previous_;
};

/// The thread's active span, or null.
const Span* active_span() noexcept;
/// A child of the active span (of its tracer); a no-op span when none is active.
Span child_span(std::string_view name, SpanKind kind = SpanKind::kInternal);

/// Now, as OTLP wants it.
std::int64_t unix_nanos() noexcept;

}  // namespace pix::telemetry
