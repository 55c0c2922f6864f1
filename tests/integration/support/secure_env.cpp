#include "support/secure_env.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pix::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

std::optional<SecureEnv> SecureEnv::from_environment() {
  const char* v = std::getenv("PIX_SECURE_STATE");
  if (v == nullptr || *v == '\0') return std::nullopt;
  return SecureEnv(v);
}

std::map<std::string, std::string> SecureEnv::env(const std::string& component) const {
  std::ifstream in(state_ + "/credentials/env/" + component + ".env");
  if (!in) throw std::runtime_error("no env file for " + component + " in " + state_);
  std::map<std::string, std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::map<std::string, std::string> SecureEnv::kafka_properties(const std::string& component) const {
  auto e = env(component);
  std::map<std::string, std::string> p;
  p["security.protocol"] = e.at("PIX_KAFKA_SECURITY_PROTOCOL");
  p["sasl.mechanisms"] = e.at("PIX_KAFKA_SASL_MECHANISM");
  p["sasl.username"] = e.at("PIX_KAFKA_USERNAME");
  p["sasl.password"] = slurp(e.at("PIX_KAFKA_PASSWORD_FILE"));
  p["ssl.ca.location"] = e.at("PIX_KAFKA_CA");
  return p;
}

amqp::AmqpUrl SecureEnv::rabbit_url(const std::string& component) const {
  auto e = env(component);
  auto parsed = amqp::parse_amqp_url(e.at("PIX_RABBIT_URL"));
  if (!parsed) throw std::runtime_error(component + ": " + parsed.error);
  parsed.url->password = slurp(e.at("PIX_RABBIT_PASSWORD_FILE"));
  parsed.url->ca_file = e.at("PIX_RABBIT_CA");
  return *parsed.url;
}

std::string SecureEnv::kafka_bootstrap() const {
  return env("pix-admin").at("PIX_KAFKA_BOOTSTRAP");
}

}  // namespace pix::test
