#include "pix/telemetry/tracing_config.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "pix/util/text.hpp"

namespace pix::telemetry {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// `k1=v1,k2=v2`, each part percent-decoded. Nothing for a malformed list.
std::optional<std::vector<std::pair<std::string, std::string>>> key_values(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = util::trim_blanks(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    auto key = util::percent_decode(util::trim_blanks(item.substr(0, eq)));
    auto value = util::percent_decode(util::trim_blanks(item.substr(eq + 1)));
    if (!key || !value || key->empty()) return std::nullopt;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

std::optional<long> positive_integer(std::string_view s) {
  long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

void set_attribute(std::vector<Attribute>& attributes, std::string key, std::string value) {
  for (auto& a : attributes) {
    if (a.key == key) {
      a.value = std::move(value);
      return;
    }
  }
  attributes.push_back({std::move(key), std::move(value)});
}

}  // namespace

std::optional<TracingConfig> tracing_config_from_env(std::string_view service, std::string_view instance,
                                                     const Getenv& getenv, std::string& error) {
  auto var = [&](const char* name) -> std::optional<std::string> {
    const char* v = getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(util::trim_blanks(v));
  };
  // The traces-specific variable wins over the general one.
  auto pick = [&](const char* specific, const char* general) -> std::pair<std::optional<std::string>, const char*> {
    if (auto v = var(specific)) return {v, specific};
    return {var(general), general};
  };
  auto fail = [&](std::string why) -> std::optional<TracingConfig> {
    error = std::move(why);
    return std::nullopt;
  };

  TracingConfig c;
  const auto disabled = var("OTEL_SDK_DISABLED");
  if (disabled && lower(*disabled) != "true" && lower(*disabled) != "false") {
    return fail("OTEL_SDK_DISABLED must be true or false, not '" + *disabled + "'");
  }
  const auto exporter = var("OTEL_TRACES_EXPORTER");
  if (exporter && *exporter != "otlp" && *exporter != "none") {
    return fail("OTEL_TRACES_EXPORTER must be otlp or none (the only exporters here), not '" + *exporter + "'");
  }

  const auto traces_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const auto base_endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (traces_endpoint) {
    c.endpoint_text = *traces_endpoint;  // used as is
  } else if (base_endpoint) {
    std::string base = *base_endpoint;
    while (!base.empty() && base.back() == '/') base.pop_back();
    c.endpoint_text = base + "/v1/traces";
  } else {
    c.endpoint_text = "http://localhost:4318/v1/traces";  // the specification's default
  }
  const char* endpoint_var = traces_endpoint ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
  std::string url_error;
  auto url = http::parse_url(c.endpoint_text, url_error);
  if (!url) return fail(std::string(endpoint_var) + ": " + url_error);
  c.endpoint = std::move(*url);

  if (auto [protocol, name] = pick("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL");
      protocol && *protocol != "http/json") {
    return fail(std::string(name) + " is '" + *protocol +
                "': this exporter speaks OTLP over HTTP with JSON only; set it to http/json or leave it unset");
  }
  if (auto [headers, name] = pick("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"); headers) {
    auto parsed = key_values(*headers);
    if (!parsed) return fail(std::string(name) + " must be name=value pairs separated by commas");
    for (const auto& [k, v] : *parsed) {
      if (k.find_first_of("\r\n: ") != std::string::npos || v.find_first_of("\r\n") != std::string::npos) {
        return fail(std::string(name) + ": header '" + k + "' has a character a header cannot carry");
      }
    }
    c.headers = std::move(*parsed);
  }
  if (auto [timeout, name] = pick("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"); timeout) {
    const auto ms = positive_integer(*timeout);
    if (!ms) return fail(std::string(name) + " must be a positive number of milliseconds, not '" + *timeout + "'");
    c.export_timeout = std::chrono::milliseconds(*ms);
  }
  if (auto [ca, name] = pick("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"); ca) {
    c.ca_file = *ca;
  }

  const auto sampler_name = var("OTEL_TRACES_SAMPLER");
  const auto sampler_arg = var("OTEL_TRACES_SAMPLER_ARG");
  auto sampler = sampler_from(sampler_name.value_or(""), sampler_arg.value_or(""), error);
  if (!sampler) return std::nullopt;
  c.sampler = *sampler;

  struct Limit {
    const char* name;
    std::size_t* value;
  };
  for (const Limit& l :
       {Limit{"OTEL_BSP_MAX_QUEUE_SIZE", &c.max_queue}, Limit{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &c.max_batch}}) {
    if (auto v = var(l.name)) {
      const auto n = positive_integer(*v);
      if (!n) return fail(std::string(l.name) + " must be a positive integer, not '" + *v + "'");
      *l.value = static_cast<std::size_t>(*n);
    }
  }
  c.max_batch = std::min(c.max_batch, c.max_queue);
  if (auto v = var("OTEL_BSP_SCHEDULE_DELAY")) {
    const auto ms = positive_integer(*v);
    if (!ms) return fail("OTEL_BSP_SCHEDULE_DELAY must be a positive number of milliseconds, not '" + *v + "'");
    c.schedule_delay = std::chrono::milliseconds(*ms);
  }

  // Resource: ours first, OTEL_RESOURCE_ATTRIBUTES over them, OTEL_SERVICE_NAME over all.
  auto& attrs = c.resource.attributes;
  set_attribute(attrs, "service.name", std::string(service));
  set_attribute(attrs, "service.namespace", "pix-pubsub");
  set_attribute(attrs, "service.version", PIX_VERSION);
  set_attribute(attrs, "service.instance.id", std::string(instance));
  set_attribute(attrs, "deployment.environment", "development");
  set_attribute(attrs, "telemetry.sdk.name", "pix-pubsub");
  set_attribute(attrs, "telemetry.sdk.language", "cpp");
  set_attribute(attrs, "telemetry.sdk.version", PIX_VERSION);
  if (auto v = var("OTEL_RESOURCE_ATTRIBUTES")) {
    auto parsed = key_values(*v);
    if (!parsed) return fail("OTEL_RESOURCE_ATTRIBUTES must be key=value pairs separated by commas");
    for (auto& [k, value] : *parsed) set_attribute(attrs, std::move(k), std::move(value));
  }
  if (auto v = var("OTEL_SERVICE_NAME")) set_attribute(attrs, "service.name", *v);

  const bool off = (disabled && lower(*disabled) == "true") || exporter == "none";
  // An endpoint or an explicit exporter turns tracing on: a process nobody pointed at a backend
  // does not spend a thread retrying localhost:4318.
  c.enabled = !off && (traces_endpoint || base_endpoint || exporter == "otlp");
  return c;
}

std::optional<TracingConfig> tracing_config_from_env(std::string_view service, std::string_view instance,
                                                     std::string& error) {
  return tracing_config_from_env(
      service, instance,
      [](const char* name) { return std::getenv(name); },  // NOLINT(concurrency-mt-unsafe): at start-up
      error);
}

}  // namespace pix::telemetry
