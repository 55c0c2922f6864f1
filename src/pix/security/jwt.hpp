#pragma once
/// @file Bearer-token verification: RFC 7519 JWTs signed as compact RFC 7515 JWS with keys from an
/// RFC 7517 JWK Set, following the RFC 8725 best practices (see docs/security-tokens.md).
///
/// Errors: verification outcomes are values (VerifyResult), never exceptions, because bad tokens
/// are ordinary input on the hot path. Only start-up (JwksSource's first load) throws.

#include <openssl/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace pix::security {

namespace detail {
/// Frees an EVP_PKEY; the deleter of EvpPkeyPtr.
struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const noexcept;
};
}  // namespace detail

/// @brief Owns one OpenSSL key. Shared read-only between threads once built (OpenSSL 3 allows
/// concurrent verification with one provider-native EVP_PKEY).
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, detail::EvpPkeyFree>;

/// @brief The JWS algorithms accepted. Each key type has exactly one (RFC 8725 §3.1: the key, not
/// the token, decides the algorithm).
enum class Algorithm {
  kRs256,  ///< RSASSA-PKCS1-v1_5 with SHA-256, RSA keys of at least 2048 bits
  kEs256,  ///< ECDSA P-256 with SHA-256, signature R||S (64 bytes)
  kEdDsa,  ///< Ed25519 (RFC 8037)
};

/// The JOSE `alg` name: "RS256", "ES256" or "EdDSA".
std::string_view to_string(Algorithm alg) noexcept;

/// The algorithm named by a JOSE `alg` value (case-sensitive, RFC 7515 §4.1.1); nullopt otherwise.
std::optional<Algorithm> parse_algorithm(std::string_view name) noexcept;

/// @brief One verification key of a KeySet.
struct VerificationKey {
  std::string kid;
  Algorithm alg = Algorithm::kEs256;  ///< implied by kty/crv; a JWK `alg` must agree with it
  EvpPkeyPtr key;
};

/// @brief The public keys tokens may be signed with, by `kid`. Immutable once built; share it as
/// `std::shared_ptr<const KeySet>`.
class KeySet {
 public:
  /// The key with this kid, or nullptr.
  const VerificationKey* find(std::string_view kid) const noexcept;
  std::size_t size() const noexcept { return keys_.size(); }
  bool empty() const noexcept { return keys_.empty(); }
  /// The kids, sorted (for logs).
  std::vector<std::string> kids() const;
  /// Adds a key; false (and nothing added) when its kid is already present.
  bool add(VerificationKey key);

 private:
  std::map<std::string, VerificationKey, std::less<>> keys_;
};

/// @brief A JWK of the set that was not taken, and why (for logs; never secret).
struct SkippedKey {
  std::size_t index = 0;  ///< position in `keys`
  std::string kid;        ///< empty when the JWK had none
  std::string reason;
};

/// @brief Outcome of parse_jwks(): `keys` is set unless the document is not a JWK Set at all.
struct JwksParse {
  std::optional<KeySet> keys;
  std::vector<SkippedKey> skipped;
  std::string error;  ///< why the document was refused as a whole

  explicit operator bool() const noexcept { return keys.has_value(); }
};

/// @brief Parses a JWK Set document (`{"keys":[...]}`).
///
/// Taken: kty RSA (n, e; 2048 to 16384 bits), EC with crv P-256 (x, y, a point on the curve) and
/// OKP with crv Ed25519 (x). Every key needs a `kid`; `use`, when present, must be "sig" and
/// `key_ops`, when present, must hold "verify"; `alg`, when present, must be the one the key type
/// implies (RS256, ES256, EdDSA). A JWK that fails any of these is skipped with its reason, as is
/// one carrying private members (`d`, `p`...: a published private key can sign anyone's tokens),
/// symmetric keys (kty oct) and a second key with a kid already taken.
JwksParse parse_jwks(std::string_view json);

/// @brief What a token must satisfy besides its signature.
struct VerifyPolicy {
  std::string issuer;                  ///< `iss` must equal this exactly (empty: every token is refused)
  std::vector<std::string> audiences;  ///< `aud` must contain one of these (none: every token is refused)
  std::chrono::seconds leeway{60};     ///< clock skew allowed on `exp` and `nbf`
  std::size_t max_token_bytes = 8192;  ///< longer tokens are refused before any parsing
};

/// The scope that allows publishing to `topic`: `publish:<topic>`.
inline constexpr std::string_view kPublishScopePrefix = "publish:";
std::string publish_scope(std::string_view topic);

/// @brief What a verified token says about its bearer.
struct Claims {
  std::string subject;              ///< sub
  std::string issuer;               ///< iss
  std::vector<std::string> scopes;  ///< `scope` (space separated) then `scp` (array or space separated)
  std::chrono::system_clock::time_point expires_at;  ///< exp
  std::string token_id;                              ///< jti, empty when absent
  std::string client_id;                             ///< azp, else client_id, else empty

  /// True when `scope` is one of the token's scopes (exact match).
  bool has_scope(std::string_view scope) const noexcept;
};

/// @brief Why a token was refused. All of them mean 401 with `error="invalid_token"` (RFC 6750).
enum class VerifyError {
  kMalformed,             ///< not three base64url segments of JSON objects, oversized, crit, bad typ, bad types
  kUnsupportedAlgorithm,  ///< alg not RS256/ES256/EdDSA (none and HS* included), or not the key's alg
  kUnknownKey,            ///< no kid, or a kid that is not in the key set
  kBadSignature,          ///< the signature does not verify (wrong length included)
  kExpired,               ///< now >= exp + leeway
  kNotYetValid,           ///< now + leeway < nbf
  kWrongIssuer,           ///< iss is not the configured issuer
  kWrongAudience,         ///< aud holds none of the configured audiences
  kMissingClaim,          ///< exp, sub, iss or aud absent
};

/// A stable snake_case name ("malformed", "bad_signature"...), for logs and metric labels.
std::string_view to_string(VerifyError error) noexcept;

/// @brief Outcome of verification: `claims` set, or `error` and `detail`.
///
/// `detail` is short printable ASCII without quotes or backslashes, and never contains the token,
/// so it can go into a problem+json body and a `WWW-Authenticate: Bearer error_description="..."`.
struct VerifyResult {
  std::shared_ptr<const Claims> claims;  ///< shared with TokenVerifier's cache: no copy per request
  VerifyError error = VerifyError::kMalformed;
  std::string detail;

  explicit operator bool() const noexcept { return claims != nullptr; }
};

/// @brief Verifies a compact JWS token against `keys` and `policy` at time `now`.
///
/// Order: size, three segments, header (alg allowed, no crit, typ JWT or at+jwt, kid known, alg
/// the key's), signature, and only then the claims (types, exp and sub present, iss, aud, exp and
/// nbf with leeway). `jku`, `x5u`, `jwk` and `x5c` headers are ignored: keys come from `keys` only.
VerifyResult verify(std::string_view token, const KeySet& keys, const VerifyPolicy& policy,
                    std::chrono::system_clock::time_point now);

/// @brief Verifies tokens for many threads, remembering verified ones until they expire.
///
/// The cache holds at most `max_cached` verified tokens (oldest evicted first), each answered
/// from memory while `nbf - leeway <= now < exp`: never past `exp`, even inside the leeway (past
/// it, the full check runs again). Memory is bounded by max_cached * policy.max_token_bytes, a
/// few MB with typical tokens. Failures are never cached. replace_keys() empties the cache, so
/// a retired key stops working at once. Thread-safe.
class TokenVerifier {
 public:
  static constexpr std::size_t kDefaultMaxCached = 10'000;

  explicit TokenVerifier(VerifyPolicy policy, std::shared_ptr<const KeySet> keys = std::make_shared<const KeySet>(),
                         std::size_t max_cached = kDefaultMaxCached);

  /// Same answer as security::verify() with the current keys, from the cache when possible.
  VerifyResult verify(std::string_view token,
                      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  /// Swaps in a new key set (a JWKS reload) and empties the cache.
  void replace_keys(std::shared_ptr<const KeySet> keys);
  std::shared_ptr<const KeySet> keys() const;
  const VerifyPolicy& policy() const noexcept { return policy_; }

  std::uint64_t cache_hits() const noexcept { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t cache_misses() const noexcept { return misses_.load(std::memory_order_relaxed); }
  std::size_t cache_size() const;

 private:
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Entry {
    std::shared_ptr<const Claims> claims;
    std::chrono::system_clock::time_point valid_from;  // nbf - leeway (or the epoch)
    std::chrono::system_clock::time_point expires;     // exp, without leeway
  };

  const VerifyPolicy policy_;
  const std::size_t max_cached_;
  mutable std::shared_mutex mutex_;  // guards keys_, generation_, cache_, order_
  std::shared_ptr<const KeySet> keys_;
  std::uint64_t generation_ = 0;  // bumped by replace_keys: a result verified with older keys is not cached
  std::unordered_map<std::string, Entry, TokenHash, std::equal_to<>> cache_;
  std::deque<const std::string*> order_;  // cache keys, oldest first (map nodes are stable)
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
};

/// @brief Keeps a TokenVerifier's keys up to date from a JWKS file or an `https://` (or `http://`) URL.
///
/// The first load happens in the constructor, which throws std::runtime_error when it fails (a
/// gateway must not start without keys). Then a thread re-reads the document every `refresh`
/// and, for a file, as soon as its mtime, size or inode changes (looked at every `file_check`).
/// A refresh that fails, or yields no usable key, keeps the last good set and logs a warning; an
/// unchanged document is not pushed again (the verifier's cache survives). An `https://` server
/// must present a certificate that chains to `ca_file` (the system's CAs when empty) and names
/// the URL's host (DNS or IP SAN), over TLS 1.2 or later; anything less is a failed load.
class JwksSource {
 public:
  struct Options {
    std::string location;                        ///< a file path, or `https://host[:port]/path` (or http)
    std::chrono::seconds refresh{300};           ///< re-read at least this often
    std::chrono::milliseconds file_check{1000};  ///< how often a file's metadata is looked at
    std::chrono::seconds fetch_timeout{10};      ///< bound on one HTTP fetch, connect to last byte
    std::size_t max_document_bytes = 1 << 20;
    std::string ca_file{};  ///< https: PEM CA certificates the server's must chain to; empty: the system's
  };

  /// Loads the key set and starts the refresh thread. `verifier` must outlive this object.
  /// Throws std::invalid_argument for a non-positive interval, std::runtime_error when the
  /// location is refused (a malformed URL, a CA file that does not load) or the first load fails.
  JwksSource(Options options, TokenVerifier& verifier);
  /// Blocks: stops the refresh thread and joins it, waiting for an HTTP fetch in progress (at
  /// most fetch_timeout) to end.
  ~JwksSource();
  JwksSource(const JwksSource&) = delete;
  JwksSource& operator=(const JwksSource&) = delete;

  std::uint64_t loads() const noexcept { return loads_.load(std::memory_order_relaxed); }
  std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }

 private:
  struct FileStamp {
    std::int64_t mtime_ns = 0;
    std::int64_t size = -1;
    std::uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };

  /// Reads and installs the document; the error text, or empty on success.
  std::string load();
  std::optional<FileStamp> stamp() const;
  void run();

  const Options options_;
  const bool is_url_;
  TokenVerifier& verifier_;
  std::string last_document_;  // the last document installed (refresh thread only, after construction)
  std::optional<FileStamp> last_stamp_;
  std::atomic<std::uint64_t> loads_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after every other member exists
};

}  // namespace pix::security
