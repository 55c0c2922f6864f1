#pragma once
/// @file Provenance of the saga's decisions: a stage signs each record it emits (HMAC-SHA-256
/// with a key id), and the next stage acts only on records signed by the stage that owns the
/// step before it. See docs/provenance.md for the model and why HMAC.
///
/// A key is a JSON file shaped like an RFC 7517 symmetric JWK, plus the stage it belongs to:
///   {"kty": "oct", "alg": "HS256", "kid": "antifraud-1", "k": "<base64url, 32+ bytes>",
///    "pix_stage": "antifraud"}
/// The signature travels in the record's `pix-signature` header:
///   v1;kid=<kid>;sig=<base64url of HMAC-SHA-256(key, signing_input)>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pix::security {

/// Name of the Kafka header that carries a record's signature.
inline constexpr std::string_view kSignatureHeader = "pix-signature";

/// @brief One decision-signing key: who it belongs to and its secret (never logged).
struct DecisionKey {
  std::string kid;
  std::string stage;   ///< the saga stage whose decisions it signs (antifraud, settlement, ...)
  std::string secret;  ///< raw bytes, at least 32
};

/// Parses a key document (the JSON above). Throws std::runtime_error naming the bad member.
DecisionKey parse_decision_key(std::string_view json_text);
/// Reads and parses a key file; the error names the file. A file that any user may read is
/// loaded with a warning (Kubernetes mounts Secrets 0644 unless told otherwise).
DecisionKey load_decision_key(const std::string& path);
/// A new random key (32 bytes) for `stage`, with kid `<stage>-<8 hex>`, as its JSON document.
std::string generate_decision_key_json(const std::string& stage);

/// What is signed: the topic, the record key, the event id (CloudEvents id) and the value, each
/// preceded by its length, so that no two different records have the same input.
std::string signing_input(std::string_view topic, std::string_view key, std::string_view event_id,
                          std::string_view value);

/// The `pix-signature` header value of `input` under `key`.
std::string sign_decision(const DecisionKey& key, std::string_view input);

/// @brief Why a record's signature was not accepted (the stable names are metric labels).
enum class SignatureError : std::uint8_t { kMissing, kMalformed, kUnknownKey, kWrongStage, kBadSignature };
std::string_view to_string(SignatureError e) noexcept;

/// @brief Verifies signatures against the keys of one stage (several kids during a rotation).
class DecisionVerifier {
 public:
  /// `trusted`: keys that may be presented; only those of `required_stage` are accepted, the
  /// others answer kWrongStage (a settlement key presented where anti-fraud's is required).
  DecisionVerifier(std::vector<DecisionKey> trusted, std::string required_stage);

  /// Nothing when `header` is a valid signature of `input` by a key of the required stage.
  std::optional<SignatureError> verify(std::string_view header, std::string_view input) const;
  const std::string& required_stage() const noexcept { return required_stage_; }

 private:
  std::map<std::string, DecisionKey, std::less<>> keys_;
  std::string required_stage_;
};

}  // namespace pix::security
