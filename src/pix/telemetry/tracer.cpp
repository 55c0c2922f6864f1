#include "pix/telemetry/tracer.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "pix/http/client.hpp"

namespace pix::telemetry {
namespace {

thread_local const Span* t_active = nullptr;

bool retryable(const ExportAttempt& a) {
  // The specification's retryable statuses; no answer at all (refused, reset, timed out) too.
  return a.status == 0 || a.status == 429 || a.status == 502 || a.status == 503 || a.status == 504;
}

// Retry-After in seconds (the HTTP-date form is not used by collectors; it falls back to backoff).
std::optional<std::chrono::milliseconds> retry_after(const std::string& header) {
  unsigned seconds = 0;
  const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), seconds);
  if (header.empty() || ec != std::errc() || end != header.data() + header.size()) return std::nullopt;
  return std::chrono::seconds(seconds);
}

// partialSuccess.rejectedSpans of a 200 answer, 0 when absent.
std::uint64_t rejected_spans(const std::string& body) {
  boost::json::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return 0;
  const auto* partial = v.as_object().if_contains("partialSuccess");
  if (!partial || !partial->is_object()) return 0;
  const auto* rejected = partial->as_object().if_contains("rejectedSpans");
  if (!rejected) return 0;
  // int64 travels as a string in OTLP/JSON; accept a number too.
  if (rejected->is_string()) {
    std::uint64_t n = 0;
    const auto& s = rejected->as_string();
    std::from_chars(s.data(), s.data() + s.size(), n);
    return n;
  }
  if (rejected->is_int64()) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, rejected->as_int64()));
  return 0;
}

}  // namespace

std::int64_t unix_nanos() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void describe_tracing_metrics(Registry& m) {
  m.describe("pix_trace_spans_exported_total", "Spans the trace backend accepted", "counter");
  m.describe("pix_trace_spans_dropped_total",
             "Spans dropped: queue_full (backend slow or down), export_failed (retries exhausted), rejected (the "
             "backend refused them)",
             "counter");
  m.describe("pix_trace_export_failures_total", "Export requests that failed (each retry counts)", "counter");
  m.describe("pix_trace_queue_spans", "Finished spans waiting for export (at most OTEL_BSP_MAX_QUEUE_SIZE)", "gauge");
}

ExportTransport http_transport(const TracingConfig& config) {
  http::ClientRequest base;
  base.method = "POST";
  base.url = config.endpoint;
  base.headers = config.headers;
  base.headers.emplace_back("Content-Type", "application/json");
  base.ca_file = config.ca_file;
  base.timeout = config.export_timeout;
  base.max_response_bytes = std::size_t{64} * 1024;
  return [base](const std::string& body) {
    http::ClientRequest request = base;
    request.body = body;
    auto r = http::send_request(request);
    return ExportAttempt{r.status, std::move(r.retry_after), std::move(r.body), std::move(r.error)};
  };
}

// ---- BatchExporter ---------------------------------------------------------------------------

BatchExporter::BatchExporter(Options options, Resource resource, ExportTransport transport, Registry* metrics)
    : options_(options), resource_(std::move(resource)), transport_(std::move(transport)) {
  Registry& m = metrics ? *metrics : own_metrics_;
  describe_tracing_metrics(m);
  exported_ = &m.counter("pix_trace_spans_exported_total", "");
  dropped_queue_full_ = &m.counter("pix_trace_spans_dropped_total", "", {{"reason", "queue_full"}});
  dropped_export_failed_ = &m.counter("pix_trace_spans_dropped_total", "", {{"reason", "export_failed"}});
  dropped_rejected_ = &m.counter("pix_trace_spans_dropped_total", "", {{"reason", "rejected"}});
  export_requests_failed_ = &m.counter("pix_trace_export_failures_total", "");
  m.gauge("pix_trace_queue_spans", "", {}, [this] { return static_cast<double>(queued()); });
  options_.max_queue = std::max<std::size_t>(options_.max_queue, 1);
  options_.max_batch = std::clamp<std::size_t>(options_.max_batch, 1, options_.max_queue);
  queue_.reserve(options_.max_queue);  // allocated once: the queue never grows past it
  thread_ = std::thread([this] { run(); });
}

BatchExporter::~BatchExporter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool BatchExporter::enqueue(const SpanData& span) {
  std::string encoded;
  append_span_json(encoded, span);
  return enqueue(std::move(encoded));
}

bool BatchExporter::enqueue(std::string span) {
  bool full_batch = false;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.max_queue) {
      dropped_queue_full_->inc();
      return false;
    }
    queue_.push_back(std::move(span));
    full_batch = queue_.size() == options_.max_batch;
  }
  if (full_batch) wake_.notify_one();
  return true;
}

bool BatchExporter::flush(std::chrono::milliseconds bound) {
  std::unique_lock lock(mutex_);
  const std::uint64_t ticket = ++flush_requests_;
  wake_.notify_one();
  return flushed_.wait_for(lock, bound, [&] { return flush_done_ >= ticket; }) && queue_.empty();
}

std::uint64_t BatchExporter::dropped() const noexcept {
  return dropped_queue_full_->value() + dropped_export_failed_->value() + dropped_rejected_->value();
}

std::size_t BatchExporter::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void BatchExporter::run() {
  std::vector<std::string> batch;
  batch.reserve(options_.max_batch);
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, options_.schedule_delay,
                   [&] { return stop_ || queue_.size() >= options_.max_batch || flush_requests_ > flush_done_; });
    const bool stopping = stop_;
    const std::uint64_t flush_target = flush_requests_;
    // What is queued now goes out, a batch at a time, the lock not held while sending; spans
    // queued meanwhile wait for the next round, so that a flush ends even under load.
    std::size_t to_send = queue_.size();
    while (to_send > 0 && !queue_.empty()) {
      const std::size_t n = std::min({queue_.size(), options_.max_batch, to_send});
      std::move(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n), std::back_inserter(batch));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      to_send -= n;
      lock.unlock();
      export_batch(batch, !stopping);
      batch.clear();
      lock.lock();
    }
    flush_done_ = flush_target;
    flushed_.notify_all();
    if (stopping) return;
  }
}

void BatchExporter::export_batch(std::vector<std::string>& batch, bool retry) {
  const std::string body = wrap_spans_json(resource_, batch, PIX_VERSION);
  auto backoff = options_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    const ExportAttempt a = transport_(body);
    if (a.status >= 200 && a.status < 300) {
      const std::uint64_t rejected = std::min<std::uint64_t>(rejected_spans(a.body), batch.size());
      exported_->inc(batch.size() - rejected);
      dropped_rejected_->inc(rejected);
      return;
    }
    export_requests_failed_->inc();
    const std::string why = a.status ? "HTTP " + std::to_string(a.status) : a.error;
    if (!retryable(a)) {
      // 400 and the like: the same bytes would be refused again.
      spdlog::warn("trace export: the backend refused {} span(s) ({}); dropped", batch.size(), why);
      dropped_rejected_->inc(batch.size());
      return;
    }
    if (!retry || attempt >= options_.max_attempts) {
      if (export_requests_failed_->value() == 1 || export_requests_failed_->value() % 100 == 0) {
        spdlog::warn("trace export: {} span(s) dropped after {} attempt(s): {}", batch.size(), attempt, why);
      }
      dropped_export_failed_->inc(batch.size());
      return;
    }
    auto wait = retry_after(a.retry_after).value_or(backoff);
    wait = std::min(wait, options_.max_backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, wait, [&] { return stop_; })) retry = false;  // stopping: one last try
  }
}

// ---- Span ------------------------------------------------------------------------------------

void Span::move_from(Span& other) noexcept {
  context_ = std::move(other.context_);
  tracer_ = std::exchange(other.tracer_, nullptr);
  recording_ = std::exchange(other.recording_, false);
  json_ = std::move(other.json_);
  attributes_mark_ = other.attributes_mark_;
  links_ = std::move(other.links_);
  status_ = other.status_;
  status_message_ = std::move(other.status_message_);
}

Span::Span(Span&& other) noexcept {
  move_from(other);
}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    move_from(other);
  }
  return *this;
}

Span::~Span() {
  end();
}

Span& Span::set(std::string_view key, std::string_view value) {
  if (recording_) append_attribute_json(json_, key, value);
  return *this;
}

Span& Span::set(std::string_view key, std::int64_t value) {
  if (recording_) append_attribute_json(json_, key, value);
  return *this;
}

Span& Span::set(std::string_view key, bool value) {
  if (recording_) append_attribute_json(json_, key, value);
  return *this;
}

Span& Span::set(std::string_view key, double value) {
  if (recording_) append_attribute_json(json_, key, value);
  return *this;
}

Span& Span::set_error(std::string_view message) {
  if (recording_) {
    status_ = SpanStatus::kError;
    status_message_ = std::string(message);
  }
  return *this;
}

Span& Span::add_link(const TraceContext& context) {
  if (recording_) links_.push_back(context);
  return *this;
}

void Span::end() {
  if (!recording_) return;
  recording_ = false;
  close_span_json(json_, attributes_mark_, unix_nanos(), links_, status_, status_message_);
  if (tracer_) tracer_->finish(std::move(json_));
  json_.clear();
}

// ---- Tracer ----------------------------------------------------------------------------------

Tracer::Tracer(const TracingConfig& config, Registry* metrics, ExportTransport transport) : sampler_(config.sampler) {
  if (metrics) describe_tracing_metrics(*metrics);
  if (!config.enabled) return;
  BatchExporter::Options o;
  o.max_queue = config.max_queue;
  o.max_batch = config.max_batch;
  o.schedule_delay = config.schedule_delay;
  exporter_ = std::make_unique<BatchExporter>(o, config.resource,
                                              transport ? std::move(transport) : http_transport(config), metrics);
}

Tracer::~Tracer() = default;

Span Tracer::start(std::string_view name, SpanKind kind, const std::optional<TraceContext>& parent) {
  Span s;
  s.tracer_ = this;
  s.context_ = TraceContext::child_of(parent);
  if (!exporter_) return s;  // disabled: the context propagates, nothing is recorded
  s.context_.sampled = sampler_.sample(parent, s.context_.trace_id);
  if (!s.context_.sampled) return s;
  s.recording_ = true;
  s.json_.reserve(1024);  // a gateway span with its attributes fits: one allocation per span
  s.attributes_mark_ =
      open_span_json(s.json_, s.context_.trace_id, s.context_.span_id,
                     parent ? std::string_view(parent->span_id) : std::string_view{}, name, kind, unix_nanos());
  return s;
}

bool Tracer::flush(std::chrono::milliseconds bound) {
  return exporter_ ? exporter_->flush(bound) : true;
}

void Tracer::finish(std::string&& span) {
  if (exporter_) exporter_->enqueue(std::move(span));
}

std::unique_ptr<Tracer> tracer_from_env(std::string_view service, Registry& metrics) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "%s", "localhost");
  const std::string instance = std::string(host) + "-" + std::to_string(::getpid());
  std::string error;
  auto config = tracing_config_from_env(service, instance, error);
  if (!config) throw std::invalid_argument("tracing: " + error);
  if (!config->enabled) {
    spdlog::info("tracing: off (set OTEL_EXPORTER_OTLP_ENDPOINT to export spans); traceparent still propagates");
  } else {
    spdlog::info(
        "tracing: spans to {} (OTLP/HTTP JSON), sampler {}{} ratio {}, queue {} spans, batches of {} every {} ms",
        config->endpoint_text, config->sampler.parent_based() ? "parent-based " : "", "trace-id",
        config->sampler.ratio(), config->max_queue, config->max_batch, config->schedule_delay.count());
    if (!config->endpoint.tls && config->endpoint.host != "127.0.0.1" && config->endpoint.host != "localhost" &&
        config->endpoint.host != "::1") {
      spdlog::warn("tracing: {} is plain http: span attributes (topics, keys, principals) travel unencrypted",
                   config->endpoint_text);
    }
  }
  return std::make_unique<Tracer>(*config, &metrics);
}

// ---- the active span -------------------------------------------------------------------------

ActiveSpan::ActiveSpan(const Span& span) noexcept : previous_(t_active) {
  t_active = &span;
}
ActiveSpan::~ActiveSpan() {
  t_active = previous_;
}

const Span* active_span() noexcept {
  return t_active;
}

Span Span::child(std::string_view name, SpanKind kind) const {
  if (!valid() || !tracer_) return {};
  return tracer_->start(name, kind, context_);
}

Span child_span(std::string_view name, SpanKind kind) {
  return t_active ? t_active->child(name, kind) : Span{};
}

}  // namespace pix::telemetry
