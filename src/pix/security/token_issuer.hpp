#pragma once
/// @file The local development token issuer (`pix-token`, tests): a signing key, its public JWKS,
/// and compact JWS tokens the gateway's verifier accepts. Not an identity provider: it signs
/// whatever it is asked to.
///
/// Errors: key generation, loading and saving throw std::runtime_error (tooling and test setup).

#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pix/security/jwt.hpp"

namespace pix::security {

/// @brief What a token says. `sign()` writes iss, sub, aud, iat, exp (iat + ttl), nbf (when
/// given), scope (space separated, when not empty) and a random jti, then merges `extra`.
struct TokenRequest {
  std::string subject = "dev-client";
  std::string issuer = "https://pix-pubsub.local/dev-issuer";
  std::string audience = "pix-api";
  std::vector<std::string> scopes;  ///< written verbatim (`publish:pix.audit.log`...)
  std::chrono::seconds ttl{3600};
  std::optional<std::chrono::system_clock::time_point> not_before;
  boost::json::object extra;         ///< merged into the payload last; a null member removes that claim
  boost::json::object extra_header;  ///< merged into the JOSE header last, same rule (tests forge with it)
};

/// @brief A private signing key with its kid (the RFC 7638 thumbprint of its public JWK).
class TokenIssuer {
 public:
  /// A new P-256 key (ES256): what `pix-token init` makes.
  static TokenIssuer generate_es256();
  /// A new RSA key (RS256). Sizes below 2048 bits are allowed so tests can show they are refused.
  static TokenIssuer generate_rs256(int bits = 2048);
  /// A new Ed25519 key (EdDSA).
  static TokenIssuer generate_ed25519();
  /// A key from PEM (PKCS#8 or traditional): P-256, RSA or Ed25519. Encrypted PEM is refused.
  static TokenIssuer from_pem(std::string_view pem);
  static TokenIssuer load_pem_file(const std::string& path);

  Algorithm algorithm() const noexcept { return alg_; }
  const std::string& kid() const noexcept { return kid_; }

  /// The private key as PKCS#8 PEM. A secret: never log it.
  std::string private_key_pem() const;
  /// Writes private_key_pem() to a new file of mode 0600; refuses to replace an existing file.
  void save_pem_file(const std::string& path) const;

  /// The public JWK with kid, `use: sig` and alg.
  boost::json::object public_jwk() const;
  /// `{"keys":[public_jwk()]}`.
  std::string jwks_json() const;
  /// Writes jwks_json() (mode 0644) through a temporary file and a rename, so a JwksSource
  /// watching `path` never reads half a file.
  void save_jwks_file(const std::string& path) const;

  /// A compact JWS: header {alg, typ JWT, kid} + extra_header, payload as TokenRequest says.
  std::string sign(const TokenRequest& request,
                   std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

 private:
  TokenIssuer(EvpPkeyPtr key, Algorithm alg);
  std::string signature(std::string_view signing_input) const;

  EvpPkeyPtr key_;
  Algorithm alg_;
  boost::json::object public_members_;  // kty, crv, x, y / n, e
  std::string kid_;
};

/// @brief RFC 7638 JWK thumbprint: base64url(SHA-256) of the required public members of an RSA,
/// EC or OKP JWK, sorted and without whitespace; nullopt when members are missing.
std::optional<std::string> jwk_thumbprint(const boost::json::object& jwk);

/// @brief A token lifetime written `30s`, `15m`, `1h` or `2d`: a positive whole number and one
/// unit, at most 366 days; nullopt otherwise.
std::optional<std::chrono::seconds> parse_ttl(std::string_view text);

/// @brief The scope that allows publishing to the PIX topic `topic` (`publish:<topic>`); nullopt
/// when `topic` is not one of the five of domain/topics.hpp.
std::optional<std::string> scope_for_topic(std::string_view topic);

}  // namespace pix::security
