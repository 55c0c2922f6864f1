#include "pix/telemetry/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "pix/util/invariant.hpp"

namespace pix::telemetry {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + escape_label(labels[i].second) + '"';
  }
  return out + '}';
}

// `{a="b"}` + le -> `{a="b",le="0.1"}`
std::string with_le(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) noexcept {
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Registry::Series& Registry::series(const std::string& name, const std::string& help, const char* type,
                                   const Labels& labels) {
  auto& fam = families_[name];
  if (fam.type.empty()) {
    fam.help = help;
    fam.type = type;
  } else if (fam.type != type) {
    throw std::logic_error("metric " + name + " registered as " + fam.type + " and " + type);
  }
  return fam.series[render_labels(labels)];
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& s = series(name, help, "counter", labels);
  if (!s.counter) {
    s.labels = render_labels(labels);
    s.counter = std::make_unique<Counter>();
  }
  return *s.counter;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, const Labels& labels,
                               std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  auto& s = series(name, help, "histogram", labels);
  if (!s.histogram) {
    s.labels = render_labels(labels);
    s.histogram = std::make_unique<Histogram>(std::move(bounds));
  }
  return *s.histogram;
}

void Registry::gauge(const std::string& name, const std::string& help, const Labels& labels,
                     std::function<double()> read) {
  std::lock_guard lock(mutex_);
  auto& s = series(name, help, "gauge", labels);
  s.labels = render_labels(labels);
  s.read = std::move(read);
}

void Registry::counter(const std::string& name, const std::string& help, const Labels& labels,
                       std::function<std::uint64_t()> read) {
  std::lock_guard lock(mutex_);
  auto& s = series(name, help, "counter", labels);
  s.labels = render_labels(labels);
  s.read = [read = std::move(read)] { return static_cast<double>(read()); };
}

void Registry::describe(const std::string& name, const std::string& help, const std::string& type) {
  std::lock_guard lock(mutex_);
  auto& fam = families_[name];
  if (!fam.type.empty() && fam.type != type) {
    throw std::logic_error("metric " + name + " registered as " + fam.type + " and " + type);
  }
  fam.help = help;
  fam.type = type;
}

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, fam] : families_) {
    out.append("# HELP ").append(name).append(1, ' ').append(fam.help);
    out.append("\n# TYPE ").append(name).append(1, ' ').append(fam.type).append(1, '\n');
    for (const auto& [key, s] : fam.series) {
      if (s.counter) {
        out += name + s.labels + ' ' + std::to_string(s.counter->value()) + '\n';
      } else if (s.read) {
        out += name + s.labels + ' ' + number(s.read()) + '\n';
      } else if (s.histogram) {
        const auto& h = *s.histogram;
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
          cumulative += h.bucket(i);
          const std::string le = i < h.bounds().size() ? number(h.bounds()[i]) : "+Inf";
          out += name + "_bucket" + with_le(s.labels, le) + ' ' + std::to_string(cumulative) + '\n';
        }
        out += name + "_sum" + s.labels + ' ' + number(h.sum()) + '\n';
        out += name + "_count" + s.labels + ' ' + std::to_string(h.count()) + '\n';
      }
    }
  }
  return out;
}

std::vector<std::string> Registry::family_names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, fam] : families_) names.push_back(name);
  return names;
}

void register_build_info(Registry& registry, const std::string& service) {
  registry.gauge("pix_build_info", "Build information; always 1", {{"service", service}, {"version", PIX_VERSION}},
                 [] { return 1.0; });
  registry.counter("pix_invariant_violations_total",
                   "Invariants found broken (PIX_BUG) and exceptions stopped at a C library's callback; "
                   "each is logged at error level",
                   {}, [] { return util::invariant_violations(); });
}

}  // namespace pix::telemetry
