#include "pix/gateway/authenticator.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "pix/domain/topics.hpp"

namespace pix::gateway {
namespace {

bool ieq_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const auto a = static_cast<unsigned char>(text[i]);
    const auto b = static_cast<unsigned char>(prefix[i]);
    if (std::tolower(a) != std::tolower(b)) return false;
  }
  return true;
}

// RFC 6750 §2.3: a token in the URI leaks into logs and referrers; refused outright.
bool token_in_query(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.starts_with("access_token=") || pair == "access_token") return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

std::string read_file(const std::string& path, std::string_view flag) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(std::string(flag) + ": cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Authentication refuse(std::string error, std::string detail, std::string reason) {
  Authentication a;
  a.error = std::move(error);
  a.detail = std::move(detail);
  a.reason = std::move(reason);
  return a;
}

}  // namespace

bool Principal::may_publish(std::string_view topic) const {
  if (claims) return claims->has_scope(security::publish_scope(topic));
  return cert_topics.find(topic) != cert_topics.end();
}

std::map<std::string, std::set<std::string, std::less<>>, std::less<>> parse_client_cert_scopes(std::string_view json) {
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(json, ec);
  if (ec || !doc.is_object()) throw std::invalid_argument("client certificate scopes: not a JSON object");
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> out;
  for (const auto& [cn, topics] : doc.as_object()) {
    if (!topics.is_array())
      throw std::invalid_argument("client certificate scopes: '" + std::string(cn) + "' is not an array");
    auto& set = out[std::string(cn)];
    for (const auto& t : topics.as_array()) {
      if (!t.is_string() || !domain::parse_topic(t.as_string())) {
        throw std::invalid_argument("client certificate scopes: '" + std::string(cn) + "' lists an unknown topic");
      }
      set.emplace(t.as_string());
    }
  }
  return out;
}

Authenticator::Authenticator(const AuthConfig& config) {
  if (!config.jwks.empty()) {
    security::VerifyPolicy policy;
    policy.issuer = config.issuer;
    policy.audiences = config.audiences;
    policy.leeway = config.leeway;
    verifier_ = std::make_unique<security::TokenVerifier>(policy);
    security::JwksSource::Options o;
    o.location = config.jwks;
    o.refresh = config.jwks_refresh;
    o.ca_file = config.jwks_ca;
    jwks_ = std::make_unique<security::JwksSource>(o, *verifier_);
  }
  if (!config.client_cert_scopes_file.empty()) {
    cert_scopes_ = parse_client_cert_scopes(read_file(config.client_cert_scopes_file, "--client-cert-scopes"));
  }
}

// Declared here, where JwksSource is complete; stops its refresh thread (may block briefly).
Authenticator::~Authenticator() = default;

Authentication Authenticator::authenticate(std::string_view authorization, std::string_view target,
                                           const std::string* cert_cn) const {
  if (token_in_query(target)) {
    return refuse("invalid_request", "tokens in the query string are refused; use the Authorization header",
                  "query_string");
  }
  if (!authorization.empty()) {
    if (!ieq_prefix(authorization, "Bearer ")) {
      return refuse("invalid_request", "the Authorization header must be Bearer <token>", "malformed_header");
    }
    if (!verifier_)
      return refuse("invalid_request", "this gateway takes client certificates, not tokens", "malformed_header");
    std::string_view token = authorization.substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    auto verified = verifier_->verify(token);
    if (!verified) return refuse("invalid_token", verified.detail, std::string(security::to_string(verified.error)));
    Authentication a;
    a.principal = Principal{verified.claims->subject, verified.claims, {}};
    return a;
  }
  if (cert_cn != nullptr) {
    Authentication a;
    Principal p;
    p.name = "x509:" + *cert_cn;
    if (auto it = cert_scopes_.find(*cert_cn); it != cert_scopes_.end()) {
      p.cert_topics = it->second;
    } else {
      p.cert_topics.emplace(domain::topic_name(domain::Topic::kPaymentRequested));
    }
    a.principal = std::move(p);
    return a;
  }
  return refuse("", "a bearer token (or a client certificate) is required", "missing");
}

}  // namespace pix::gateway
