#pragma once
/// @file Who is calling, and what they may publish: bearer JWTs (RFC 6750) verified against the
/// issuer's JWKS, or client certificates verified by TLS, each carrying the topics it may publish.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "pix/gateway/config.hpp"
#include "pix/security/jwt.hpp"

namespace pix::gateway {

/// @brief A verified caller.
struct Principal {
  std::string name;                                ///< the token's `sub`, or `x509:<CN>` for a client certificate
  std::shared_ptr<const security::Claims> claims;  ///< set for a token
  std::set<std::string, std::less<>> cert_topics;  ///< for a certificate: the topics it may publish

  /// True when the principal holds the scope `publish:<topic>` (token) or lists the topic (certificate).
  bool may_publish(std::string_view topic) const;
};

/// @brief The answer to "who is this?": a principal, or a 401 to send.
struct Authentication {
  std::optional<Principal> principal;
  std::string error;   ///< RFC 6750 error code: invalid_request or invalid_token (empty: no credentials)
  std::string detail;  ///< short ASCII, safe in a header and a problem body
  std::string reason;  ///< metric label: missing, query_string, malformed_header, or a VerifyError name
};

/// @brief Verifies credentials of publish requests. Thread-safe.
class Authenticator {
 public:
  /// Loads the JWKS (throws when it cannot: a gateway must not start without keys) and the client
  /// certificate scopes file.
  explicit Authenticator(const AuthConfig& config);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  /// `authorization`: the Authorization header (empty when absent); `target`: the request target,
  /// checked for a token in the query string; `cert_cn`: the CN of a verified client certificate.
  Authentication authenticate(std::string_view authorization, std::string_view target,
                              const std::string* cert_cn) const;

  bool uses_tokens() const noexcept { return verifier_ != nullptr; }
  const security::TokenVerifier* verifier() const noexcept { return verifier_.get(); }

 private:
  std::unique_ptr<security::TokenVerifier> verifier_;
  std::unique_ptr<security::JwksSource> jwks_;
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> cert_scopes_;
};

/// Parses a client-certificate scopes document: {"<CN>": ["<topic>", ...]}; topics must be PIX
/// topics. Throws std::invalid_argument naming the entry at fault.
std::map<std::string, std::set<std::string, std::less<>>, std::less<>> parse_client_cert_scopes(std::string_view json);

}  // namespace pix::gateway
