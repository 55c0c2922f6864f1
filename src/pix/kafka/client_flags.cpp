#include "pix/kafka/client_flags.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pix::kafka {
namespace {

// What 200 (and a committed offset) promise rests on these: the gateway's acks=all idempotent
// delivery reports and its own ack timeout, the stages' manual commits after the effect, and a
// TLS peer that is checked. Each has a flag of its own where it may vary (--kafka-bootstrap,
// --group, --publish-timeout-ms...), or must not vary at all.
constexpr std::array<std::string_view, 22> kContractProperties = {
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "queue.buffering.max.messages",
    "transactional.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.commit.interval.ms",
    "isolation.level",
    "group.id",
    "group.instance.id",
    "bootstrap.servers",
    "metadata.broker.list",
    "enable.ssl.certificate.verification",
    "ssl.endpoint.identification.algorithm",
    "sasl.password",
    "ssl.key.password",
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool read_secret(const std::string& path, std::string& out, std::string& error, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::string(flag) + ": cannot read '" + path + "'";
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) {
    error = std::string(flag) + ": '" + path + "' is empty";
    return false;
  }
  return true;
}

bool readable(const std::string& path, std::string& error, std::string_view flag) {
  if (path.empty()) return true;
  std::ifstream in(path);
  if (in) return true;
  error = std::string(flag) + ": cannot read '" + path + "'";
  return false;
}

}  // namespace

void add_client_flags(CLI::App& app, ClientFlags& f) {
  app.add_option("--kafka-bootstrap", f.bootstrap, "Kafka bootstrap servers")
      ->envname("PIX_KAFKA_BOOTSTRAP")
      ->capture_default_str();
  app.add_option("--kafka-option", f.options,
                 "extra librdkafka property key=value (repeatable; compression, socket tuning...; "
                 "acks, idempotence, commits, isolation and TLS checks are refused)")
      ->envname("PIX_KAFKA_OPTIONS")
      ->delimiter(',');
  app.add_option("--kafka-security-protocol", f.security_protocol, "plaintext, ssl, sasl_plaintext or sasl_ssl")
      ->envname("PIX_KAFKA_SECURITY_PROTOCOL")
      ->transform(CLI::IsMember({"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"}, CLI::ignore_case));
  app.add_option("--kafka-sasl-mechanism", f.sasl_mechanism, "SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
      ->envname("PIX_KAFKA_SASL_MECHANISM")
      ->check(CLI::IsMember({"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"}))
      ->capture_default_str();
  app.add_option("--kafka-username", f.username, "SASL username (the component's own principal)")
      ->envname("PIX_KAFKA_USERNAME");
  app.add_option("--kafka-password-file", f.password_file,
                 "file holding the SASL password (or set PIX_KAFKA_PASSWORD; never on the command line)")
      ->envname("PIX_KAFKA_PASSWORD_FILE");
  app.add_option("--kafka-ca", f.ca_file, "CA certificates (PEM) the brokers' certificates must chain to")
      ->envname("PIX_KAFKA_CA");
  app.add_option("--kafka-cert", f.cert_file, "client certificate (PEM) for mutual TLS")->envname("PIX_KAFKA_CERT");
  app.add_option("--kafka-key", f.key_file, "private key (PEM) of --kafka-cert")->envname("PIX_KAFKA_KEY");
}

bool is_contract_property(std::string_view key) {
  const std::string k = lower(std::string(key));
  return std::find(kContractProperties.begin(), kContractProperties.end(), k) != kContractProperties.end();
}

std::optional<std::map<std::string, std::string>> client_properties(const ClientFlags& f, std::string& error) {
  std::map<std::string, std::string> out;
  const std::string protocol = lower(f.security_protocol);
  const bool sasl = protocol == "sasl_ssl" || protocol == "sasl_plaintext";
  const bool tls = protocol == "ssl" || protocol == "sasl_ssl";
  if (!protocol.empty()) out["security.protocol"] = protocol;

  if (sasl) {
    if (f.username.empty()) {
      error = "--kafka-security-protocol " + protocol + " needs --kafka-username (PIX_KAFKA_USERNAME)";
      return std::nullopt;
    }
    std::string password;
    if (!f.password_file.empty()) {
      if (!read_secret(f.password_file, password, error, "--kafka-password-file")) return std::nullopt;
      // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at start-up, before any thread is made
    } else if (const char* env = std::getenv("PIX_KAFKA_PASSWORD"); env != nullptr && *env != '\0') {
      password = env;
    } else {
      error = "--kafka-username " + f.username + " needs --kafka-password-file (or PIX_KAFKA_PASSWORD)";
      return std::nullopt;
    }
    out["sasl.mechanisms"] = f.sasl_mechanism;
    out["sasl.username"] = f.username;
    out["sasl.password"] = password;
  } else if (!f.username.empty() || !f.password_file.empty()) {
    error = "--kafka-username/--kafka-password-file need --kafka-security-protocol sasl_ssl (or sasl_plaintext)";
    return std::nullopt;
  }

  if (!tls && (!f.ca_file.empty() || !f.cert_file.empty() || !f.key_file.empty())) {
    error = "--kafka-ca/--kafka-cert/--kafka-key need --kafka-security-protocol ssl or sasl_ssl";
    return std::nullopt;
  }
  if (f.cert_file.empty() != f.key_file.empty()) {
    error = "--kafka-cert and --kafka-key go together";
    return std::nullopt;
  }
  if (!readable(f.ca_file, error, "--kafka-ca") || !readable(f.cert_file, error, "--kafka-cert") ||
      !readable(f.key_file, error, "--kafka-key")) {
    return std::nullopt;
  }
  if (!f.ca_file.empty()) out["ssl.ca.location"] = f.ca_file;
  if (!f.cert_file.empty()) {
    out["ssl.certificate.location"] = f.cert_file;
    out["ssl.key.location"] = f.key_file;
  }

  for (const auto& kv : f.options) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      error = "--kafka-option expects key=value, got '" + kv + "'";
      return std::nullopt;
    }
    const std::string key = kv.substr(0, eq);
    if (is_contract_property(key)) {
      error = "--kafka-option " + key +
              " is refused: it carries the delivery or security contract (use the dedicated flag, "
              "e.g. --kafka-bootstrap, --group, --publish-timeout-ms, --kafka-password-file)";
      return std::nullopt;
    }
    out[key] = kv.substr(eq + 1);
  }
  return out;
}

std::string describe(const ClientFlags& f) {
  std::string s = "kafka " + f.bootstrap;
  if (!f.security_protocol.empty()) s += " (" + lower(f.security_protocol);
  if (!f.username.empty()) s += ", as " + f.username;
  if (!f.security_protocol.empty()) s += ")";
  return s;
}

}  // namespace pix::kafka
