#include "pix/security/token_issuer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "pix/domain/topics.hpp"
#include "pix/security/base64url.hpp"
#include "pix/util/text.hpp"

namespace pix::security {
namespace {

namespace json = boost::json;

struct OpenSslFree {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
  void operator()(BIO* p) const noexcept { BIO_free(p); }
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
  void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

[[noreturn]] void throw_openssl(const std::string& what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  std::array<char, 256> text{};
  if (code != 0) ERR_error_string_n(code, text.data(), text.size());
  throw std::runtime_error(what + (code != 0 ? std::string(": ") + text.data() : std::string()));
}

const unsigned char* bytes_of(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string bn_bytes(const EVP_PKEY* key, const char* name, int pad_to = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) throw_openssl(std::string("cannot read key parameter ") + name);
  OpenSslPtr<BIGNUM> bn(raw);
  const int size = pad_to > 0 ? pad_to : BN_num_bytes(bn.get());
  std::string out(static_cast<std::size_t>(size), '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), size) != size) {
    throw_openssl(std::string("key parameter does not fit: ") + name);
  }
  return out;
}

EvpPkeyPtr checked(EVP_PKEY* key, const char* what) {
  if (key == nullptr) throw_openssl(what);
  return EvpPkeyPtr(key);
}

// The JWK members RFC 7638 hashes, by key type (RFC 8037 §2 for OKP).
json::object public_members(const EVP_PKEY* key, Algorithm alg) {
  switch (alg) {
    case Algorithm::kRs256:
      return {{"kty", "RSA"},
              {"n", base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_RSA_N))},
              {"e", base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_RSA_E))}};
    case Algorithm::kEs256:
      return {{"kty", "EC"},
              {"crv", "P-256"},
              {"x", base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
              {"y", base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
    case Algorithm::kEdDsa: {
      std::array<unsigned char, 32> raw{};
      std::size_t size = raw.size();
      if (EVP_PKEY_get_raw_public_key(key, raw.data(), &size) != 1 || size != raw.size()) {
        throw_openssl("cannot read the Ed25519 public key");
      }
      return {{"kty", "OKP"},
              {"crv", "Ed25519"},
              {"x", base64url_encode(std::string_view(reinterpret_cast<const char*>(raw.data()), size))}};
    }
  }
  throw std::logic_error("unknown algorithm");
}

Algorithm algorithm_of(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < 2048) throw std::runtime_error("RSA signing key is shorter than 2048 bits");
    return Algorithm::kRs256;
  }
  if (EVP_PKEY_is_a(key, "ED25519")) return Algorithm::kEdDsa;
  if (EVP_PKEY_is_a(key, "EC")) {
    std::array<char, 64> group{};
    std::size_t size = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &size) == 1 &&
        (std::string_view(group.data()) == "prime256v1" || std::string_view(group.data()) == "P-256")) {
      return Algorithm::kEs256;
    }
    throw std::runtime_error("EC signing key is not on P-256");
  }
  throw std::runtime_error("signing key is not P-256, RSA or Ed25519");
}

void merge(json::object& into, const json::object& extra) {
  for (const auto& [name, value] : extra) {
    if (value.is_null()) {
      into.erase(name);
    } else {
      into[name] = value;
    }
  }
}

std::string random_token_id() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) throw_openssl("RAND_bytes failed");
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("cannot write " + path + ": " + util::errno_text(errno));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Creates `path` with `mode` (O_EXCL: never replaces, never widens an existing file's mode).
void write_new_file(const std::string& path, std::string_view data, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + util::errno_text(errno));
  try {
    if (::fchmod(fd, mode) != 0) throw std::runtime_error("cannot chmod " + path + ": " + util::errno_text(errno));
    write_all(fd, data, path);
    if (::fsync(fd) != 0) throw std::runtime_error("cannot sync " + path + ": " + util::errno_text(errno));
  } catch (const std::exception&) {
    ::close(fd);
    ::unlink(path.c_str());
    throw;
  }
  if (::close(fd) != 0) throw std::runtime_error("cannot close " + path + ": " + util::errno_text(errno));
}

}  // namespace

TokenIssuer::TokenIssuer(EvpPkeyPtr key, Algorithm alg)
    : key_(std::move(key)), alg_(alg), public_members_(public_members(key_.get(), alg_)) {
  kid_ = *jwk_thumbprint(public_members_);
}

TokenIssuer TokenIssuer::generate_es256() {
  return TokenIssuer(checked(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), "P-256 key generation failed"),
                     Algorithm::kEs256);
}

TokenIssuer TokenIssuer::generate_rs256(int bits) {
  if (bits < 512) throw std::invalid_argument("RSA key size below 512 bits");
  return TokenIssuer(
      checked(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(bits)), "RSA key generation failed"),
      Algorithm::kRs256);
}

TokenIssuer TokenIssuer::generate_ed25519() {
  return TokenIssuer(checked(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), "Ed25519 key generation failed"),
                     Algorithm::kEdDsa);
}

TokenIssuer TokenIssuer::from_pem(std::string_view pem) {
  OpenSslPtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw_openssl("out of memory");
  // A callback that supplies no passphrase: an encrypted key fails instead of prompting on a tty.
  auto no_passphrase = [](char*, int, int, void*) -> int { return 0; };
  auto key = checked(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr),
                     "not an unencrypted PEM private key");
  const Algorithm alg = algorithm_of(key.get());
  return TokenIssuer(std::move(key), alg);
}

TokenIssuer TokenIssuer::load_pem_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open " + path + ": " + util::errno_text(errno));
  std::string pem;
  std::array<char, 4096> chunk{};
  std::size_t n = 0;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), f)) > 0) pem.append(chunk.data(), n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw std::runtime_error("cannot read " + path);
  try {
    return from_pem(pem);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::string TokenIssuer::private_key_pem() const {
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw_openssl("cannot write the private key as PEM");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

void TokenIssuer::save_pem_file(const std::string& path) const {
  write_new_file(path, private_key_pem(), 0600);
}

json::object TokenIssuer::public_jwk() const {
  json::object jwk = public_members_;
  jwk["kid"] = kid_;
  jwk["use"] = "sig";
  jwk["alg"] = to_string(alg_);
  return jwk;
}

std::string TokenIssuer::jwks_json() const {
  return json::serialize(json::object{{"keys", json::array{public_jwk()}}}) + "\n";
}

void TokenIssuer::save_jwks_file(const std::string& path) const {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  ::unlink(temporary.c_str());  // a leftover of a crashed run; absent is the usual case
  write_new_file(temporary, jwks_json(), 0644);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = util::errno_text(errno);
    ::unlink(temporary.c_str());
    throw std::runtime_error("cannot rename " + temporary + " to " + path + ": " + reason);
  }
}

std::string TokenIssuer::sign(const TokenRequest& request, std::chrono::system_clock::time_point now) const {
  json::object header{{"alg", to_string(alg_)}, {"typ", "JWT"}, {"kid", kid_}};
  merge(header, request.extra_header);
  json::object payload{{"iss", request.issuer},
                       {"sub", request.subject},
                       {"aud", request.audience},
                       {"iat", unix_seconds(now)},
                       {"exp", unix_seconds(now + request.ttl)}};
  if (request.not_before) payload["nbf"] = unix_seconds(*request.not_before);
  if (!request.scopes.empty()) {
    std::string scope;
    for (const auto& s : request.scopes) scope += (scope.empty() ? "" : " ") + s;
    payload["scope"] = scope;
  }
  payload["jti"] = random_token_id();
  merge(payload, request.extra);
  std::string token = base64url_encode(json::serialize(header)) + "." + base64url_encode(json::serialize(payload));
  token += "." + base64url_encode(signature(token));
  return token;
}

std::string TokenIssuer::signature(std::string_view signing_input) const {
  OpenSslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  const EVP_MD* md = alg_ == Algorithm::kEdDsa ? nullptr : EVP_sha256();
  std::size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, bytes_of(signing_input), signing_input.size()) != 1) {
    throw_openssl("signing failed");
  }
  std::string sig(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &size, bytes_of(signing_input),
                     signing_input.size()) != 1) {
    throw_openssl("signing failed");
  }
  sig.resize(size);
  if (alg_ != Algorithm::kEs256) return sig;
  // OpenSSL gives DER; JWS wants R||S, each left-padded to 32 bytes (RFC 7518 §3.4).
  const auto* der = bytes_of(sig);
  OpenSslPtr<ECDSA_SIG> parsed(d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size())));
  if (!parsed) throw_openssl("cannot parse the ECDSA signature");
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(parsed.get()), out, 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(parsed.get()), out + 32, 32) != 32) {
    throw_openssl("ECDSA signature does not fit 64 bytes");
  }
  return raw;
}

std::optional<std::string> jwk_thumbprint(const json::object& jwk) {
  const auto* kty = jwk.if_contains("kty");
  if (kty == nullptr || !kty->is_string()) return std::nullopt;
  std::vector<std::string_view> members;
  if (kty->get_string() == "RSA") {
    members = {"e", "kty", "n"};
  } else if (kty->get_string() == "EC") {
    members = {"crv", "kty", "x", "y"};
  } else if (kty->get_string() == "OKP") {
    members = {"crv", "kty", "x"};
  } else {
    return std::nullopt;
  }
  std::string canonical = "{";
  for (const auto name : members) {
    const auto* v = jwk.if_contains(name);
    if (v == nullptr || !v->is_string()) return std::nullopt;
    if (canonical.size() > 1) canonical += ',';
    canonical += json::serialize(json::value(name)) + ":" + json::serialize(*v);
  }
  canonical += '}';
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw_openssl("SHA-256 failed");
  }
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), size));
}

std::optional<std::chrono::seconds> parse_ttl(std::string_view text) {
  constexpr std::int64_t kMaxSeconds = 366LL * 86400;
  if (text.size() < 2 || text.size() > 10) return std::nullopt;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  std::int64_t value = 0;
  for (const char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');  // at most 9 digits: no overflow
  }
  if (value <= 0 || value * unit > kMaxSeconds) return std::nullopt;
  return std::chrono::seconds(value * unit);
}

std::optional<std::string> scope_for_topic(std::string_view topic) {
  if (!domain::parse_topic(topic)) return std::nullopt;
  return publish_scope(topic);
}

}  // namespace pix::security
