#include "pix/security/jwt.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "pix/domain/topics.hpp"
#include "pix/security/base64url.hpp"
#include "pix/security/token_issuer.hpp"
#include "support/test_pki.hpp"

namespace pix {
namespace {

using namespace std::chrono_literals;
using security::TokenIssuer;
using security::TokenRequest;
using security::TokenVerifier;
using security::VerifyError;
using Clock = std::chrono::system_clock;

const Clock::time_point kNow = Clock::time_point(1'700'000'000s);
constexpr std::string_view kIssuer = "https://pix-pubsub.local/dev-issuer";

// Key generation is slow under the sanitizers (RSA most of all): one key of each kind per run.
const TokenIssuer& es256() {
  static const TokenIssuer issuer = TokenIssuer::generate_es256();
  return issuer;
}
const TokenIssuer& rs256() {
  static const TokenIssuer issuer = TokenIssuer::generate_rs256();
  return issuer;
}
const TokenIssuer& eddsa() {
  static const TokenIssuer issuer = TokenIssuer::generate_ed25519();
  return issuer;
}
const TokenIssuer& other_es256() {
  static const TokenIssuer issuer = TokenIssuer::generate_es256();
  return issuer;
}

security::VerifyPolicy policy() {
  security::VerifyPolicy p;
  p.issuer = std::string(kIssuer);
  p.audiences = {"pix-api"};
  return p;
}

TokenRequest request() {
  TokenRequest r;
  r.subject = "client-42";
  r.issuer = std::string(kIssuer);
  r.audience = "pix-api";
  r.scopes = {"publish:pix.payment.requested"};
  r.ttl = 15min;
  return r;
}

std::string jwks_of(std::initializer_list<const TokenIssuer*> issuers) {
  boost::json::array keys;
  for (const auto* i : issuers) keys.push_back(i->public_jwk());
  return boost::json::serialize(boost::json::object{{"keys", keys}});
}

const security::KeySet& keys() {
  static const security::KeySet set = [] {
    auto parsed = security::parse_jwks(jwks_of({&es256(), &rs256(), &eddsa()}));
    if (!parsed || !parsed.skipped.empty()) throw std::runtime_error("test key set did not parse");
    return std::move(*parsed.keys);
  }();
  return set;
}

security::VerifyResult check(std::string_view token, Clock::time_point now = kNow) {
  return security::verify(token, keys(), policy(), now);
}

std::vector<std::string> split(std::string_view token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t dot; (dot = token.find('.', start)) != std::string_view::npos; start = dot + 1) {
    parts.emplace_back(token.substr(start, dot - start));
  }
  parts.emplace_back(token.substr(start));
  return parts;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ".") + p;
  return out;
}

std::string b64_json(const boost::json::object& o) {
  return security::base64url_encode(boost::json::serialize(o));
}

boost::json::object decode_segment(const std::string& segment) {
  return boost::json::parse(*security::base64url_decode(segment)).as_object();
}

// ---- base64url -------------------------------------------------------------------------------

TEST(Base64Url, EncodesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(security::base64url_encode(""), "");
  EXPECT_EQ(security::base64url_encode("f"), "Zg");
  EXPECT_EQ(security::base64url_encode("fo"), "Zm8");
  EXPECT_EQ(security::base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(security::base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(security::base64url_encode("\xfb\xff"), "-_8");  // the two url-safe characters
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::mt19937 rng(7);
  for (std::size_t n = 0; n < 70; ++n) {
    std::string bytes(n, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng());
    const auto decoded = security::base64url_decode(security::base64url_encode(bytes));
    ASSERT_TRUE(decoded) << n;
    EXPECT_EQ(*decoded, bytes);
  }
}

TEST(Base64Url, RefusesPaddingForeignCharactersAndImpossibleLengths) {
  for (std::string_view bad :
       std::initializer_list<std::string_view>{"Zg==", "Zm8=", "Zm9v=", "Z", "Zm9vY", "Zm+v", "Zm/v", "Zm 9", "Zm9v\n",
                                               std::string_view("Zm\0v", 4), "Zm9v.", "\xc3\xa9Zm9"}) {
    EXPECT_FALSE(security::base64url_decode(bad)) << bad;
  }
  // "Zh" would decode to "f" only by ignoring non-zero spare bits: a second spelling of "Zg".
  EXPECT_FALSE(security::base64url_decode("Zh"));
  EXPECT_FALSE(security::base64url_decode("Zm9"));
  EXPECT_EQ(security::base64url_decode("Zm8"), "fo");
}

// ---- round trips -----------------------------------------------------------------------------

TEST(Jwt, EveryAcceptedAlgorithmRoundTrips) {
  for (const TokenIssuer* issuer : {&es256(), &rs256(), &eddsa()}) {
    TokenRequest r = request();
    r.extra = {{"azp", "mobile-app"}};
    const std::string token = issuer->sign(r, kNow);
    const auto result = check(token);
    ASSERT_TRUE(result) << security::to_string(issuer->algorithm()) << ": " << result.detail;
    EXPECT_EQ(result.claims->subject, "client-42");
    EXPECT_EQ(result.claims->issuer, kIssuer);
    EXPECT_EQ(result.claims->scopes, std::vector<std::string>{"publish:pix.payment.requested"});
    EXPECT_EQ(result.claims->expires_at, kNow + 15min);
    EXPECT_EQ(result.claims->client_id, "mobile-app");
    EXPECT_FALSE(result.claims->token_id.empty());
    EXPECT_TRUE(result.claims->has_scope(security::publish_scope("pix.payment.requested")));
    EXPECT_FALSE(result.claims->has_scope(security::publish_scope("pix.audit.log")));
    EXPECT_EQ(decode_segment(split(token)[0]).at("alg").as_string(), security::to_string(issuer->algorithm()));
  }
}

TEST(Jwt, Es256SignatureIsRawRAndSAndDerIsRefused) {
  const auto parts = split(es256().sign(request(), kNow));
  const auto raw = *security::base64url_decode(parts[2]);
  ASSERT_EQ(raw.size(), 64u);
  // Some libraries send OpenSSL's DER instead of R||S: a different, longer byte string.
  std::string der = "\x30\x44\x02\x20" + raw.substr(0, 32) + "\x02\x20" + raw.substr(32);
  const auto result = check(join({parts[0], parts[1], security::base64url_encode(der)}));
  EXPECT_EQ(result.error, VerifyError::kBadSignature);
  EXPECT_EQ(result.detail, "ES256 signature must be 64 bytes");
}

// RFC 7520 §4.1: an RS256 JWS from the JOSE cookbook, made by another implementation. Its payload
// is prose, not claims, so the best outcome is "payload is not JSON": reached only after the
// signature verified. One character changed in the signature must give kBadSignature instead.
TEST(Jwt, Rfc7520Rs256SignatureVerifies) {
  const std::string jwks =
      R"({"keys":[{"kty":"RSA","kid":"bilbo.baggins@hobbiton.example","use":"sig","n":"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw","e":"AQAB"}]})";
  const std::string token =
      "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9."
      "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5k"
      "IGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4."
      "MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA"
      "78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQ"
      "dLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_"
      "fcIe8u9ipH84ogoree7vjbU5y18k"
      "DquDg";
  auto parsed = security::parse_jwks(jwks);
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed.keys->size(), 1u);
  const auto genuine = security::verify(token, *parsed.keys, policy(), kNow);
  EXPECT_EQ(genuine.error, VerifyError::kMalformed);
  EXPECT_EQ(genuine.detail, "payload is not a JSON object");
  std::string forged = token;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(security::verify(forged, *parsed.keys, policy(), kNow).error, VerifyError::kBadSignature);
}

// ---- algorithm confusion ---------------------------------------------------------------------

TEST(Jwt, AlgNoneIsRefusedWithOrWithoutASignature) {
  const auto parts = split(es256().sign(request(), kNow));
  for (std::string_view alg : {"none", "None", "NONE"}) {
    const std::string header = b64_json({{"alg", alg}, {"typ", "JWT"}, {"kid", es256().kid()}});
    for (const std::string& sig : {std::string(), parts[2]}) {
      const auto result = check(join({header, parts[1], sig}));
      EXPECT_EQ(result.error, VerifyError::kUnsupportedAlgorithm) << alg;
    }
  }
  EXPECT_EQ(check(join({b64_json({{"alg", "none"}, {"kid", es256().kid()}}), parts[1], ""})).detail,
            "alg none is not accepted");
}

// The classic confusion attack: HS256 "signed" with the verifier's public key as HMAC secret.
TEST(Jwt, Hs256WithThePublicKeyAsSecretIsRefused) {
  for (const TokenIssuer* issuer : {&rs256(), &es256()}) {
    const auto parts = split(issuer->sign(request(), kNow));
    for (std::string_view alg : {"HS256", "HS384", "HS512"}) {
      const std::string input = b64_json({{"alg", alg}, {"typ", "JWT"}, {"kid", issuer->kid()}}) + "." + parts[1];
      const std::string secret = issuer->jwks_json();
      std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
      unsigned int mac_size = 0;
      ASSERT_NE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                     reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(), &mac_size),
                nullptr);
      const std::string token =
          input + "." + security::base64url_encode(std::string(reinterpret_cast<const char*>(mac.data()), mac_size));
      EXPECT_EQ(check(token).error, VerifyError::kUnsupportedAlgorithm) << alg;
    }
  }
}

TEST(Jwt, AlgMustBeTheKeysAlgorithm) {
  // An ES256 token relabelled RS256, EdDSA or ES384 under the EC key's kid.
  const auto parts = split(es256().sign(request(), kNow));
  for (std::string_view alg : {"RS256", "EdDSA", "ES384", "PS256", "es256"}) {
    const std::string header = b64_json({{"alg", alg}, {"kid", es256().kid()}});
    EXPECT_EQ(check(join({header, parts[1], parts[2]})).error, VerifyError::kUnsupportedAlgorithm) << alg;
  }
  const std::string header = b64_json({{"alg", "RS256"}, {"kid", es256().kid()}});
  EXPECT_EQ(check(join({header, parts[1], parts[2]})).detail,
            "alg RS256 does not match key " + es256().kid() + " (ES256)");
}

TEST(Jwt, MissingOrNonStringAlgIsMalformed) {
  const auto parts = split(es256().sign(request(), kNow));
  EXPECT_EQ(check(join({b64_json({{"kid", es256().kid()}}), parts[1], parts[2]})).error, VerifyError::kMalformed);
  EXPECT_EQ(check(join({b64_json({{"alg", 256}, {"kid", es256().kid()}}), parts[1], parts[2]})).error,
            VerifyError::kMalformed);
}

// ---- keys and signatures ---------------------------------------------------------------------

TEST(Jwt, UnknownOrMissingKidIsUnknownKey) {
  const auto stranger = check(other_es256().sign(request(), kNow));
  EXPECT_EQ(stranger.error, VerifyError::kUnknownKey);
  EXPECT_EQ(stranger.detail, "unknown kid " + other_es256().kid());
  TokenRequest r = request();
  r.extra_header = {{"kid", nullptr}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kUnknownKey);
  // A kid naming a known key does not make another key's signature valid.
  r.extra_header = {{"kid", es256().kid()}};
  EXPECT_EQ(check(other_es256().sign(r, kNow)).error, VerifyError::kBadSignature);
}

TEST(Jwt, TamperedPayloadIsABadSignature) {
  for (const TokenIssuer* issuer : {&es256(), &rs256(), &eddsa()}) {
    auto parts = split(issuer->sign(request(), kNow));
    auto claims = decode_segment(parts[1]);
    claims["scope"] = "publish:pix.payment.requested publish:pix.audit.log";
    parts[1] = b64_json(claims);
    EXPECT_EQ(check(join(parts)).error, VerifyError::kBadSignature);
  }
}

TEST(Jwt, TamperedHeaderIsABadSignature) {
  for (const TokenIssuer* issuer : {&es256(), &rs256(), &eddsa()}) {
    auto parts = split(issuer->sign(request(), kNow));
    auto header = decode_segment(parts[0]);
    header["typ"] = "at+jwt";
    parts[0] = b64_json(header);
    EXPECT_EQ(check(join(parts)).error, VerifyError::kBadSignature);
  }
}

TEST(Jwt, WrongSignatureLengthIsABadSignature) {
  for (const TokenIssuer* issuer : {&es256(), &rs256(), &eddsa()}) {
    auto parts = split(issuer->sign(request(), kNow));
    const auto sig = *security::base64url_decode(parts[2]);
    for (const std::string& changed : {sig.substr(0, sig.size() - 1), sig + '\0', std::string("\0", 1) + sig,
                                       std::string(), std::string(sig.size() * 2, 'x')}) {
      parts[2] = security::base64url_encode(changed);
      EXPECT_EQ(check(join(parts)).error, VerifyError::kBadSignature) << changed.size();
    }
  }
}

// ---- claims ----------------------------------------------------------------------------------

TEST(Jwt, ExpiredIsRefusedButLeewayForgivesSmallClockSkew) {
  const std::string token = es256().sign(request(), kNow);  // exp = kNow + 15 min
  const auto exp = kNow + 15min;
  EXPECT_TRUE(check(token, exp - 1s));
  EXPECT_TRUE(check(token, exp + 59s)) << "within the 60 s leeway";
  const auto late = check(token, exp + 60s);
  EXPECT_EQ(late.error, VerifyError::kExpired);
  EXPECT_EQ(late.detail, "token expired 60 s ago");
  auto strict = policy();
  strict.leeway = 0s;
  EXPECT_EQ(security::verify(token, keys(), strict, exp).error, VerifyError::kExpired);
}

TEST(Jwt, NotBeforeInTheFutureIsRefused) {
  TokenRequest r = request();
  r.not_before = kNow + 10min;
  const std::string token = es256().sign(r, kNow);
  EXPECT_EQ(check(token).error, VerifyError::kNotYetValid);
  EXPECT_EQ(check(token).detail, "token is not valid for another 600 s");
  EXPECT_EQ(check(token, kNow + 10min - 61s).error, VerifyError::kNotYetValid);
  EXPECT_TRUE(check(token, kNow + 10min - 59s)) << "within the leeway";
  EXPECT_TRUE(check(token, kNow + 11min));
}

TEST(Jwt, WrongIssuerIsRefused) {
  TokenRequest r = request();
  r.issuer = "https://evil.example/";
  const auto result = check(es256().sign(r, kNow));
  EXPECT_EQ(result.error, VerifyError::kWrongIssuer);
  EXPECT_EQ(result.detail, "iss https://evil.example/ is not the accepted issuer");
  r.issuer = std::string(kIssuer) + "/";  // no prefix or normalisation games
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kWrongIssuer);
}

TEST(Jwt, UnconfiguredIssuerOrAudienceRefusesEverything) {
  TokenRequest r = request();
  r.issuer = "";
  auto no_issuer = policy();
  no_issuer.issuer = "";
  EXPECT_EQ(security::verify(es256().sign(r, kNow), keys(), no_issuer, kNow).error, VerifyError::kWrongIssuer);
  auto no_audience = policy();
  no_audience.audiences = {};
  EXPECT_EQ(security::verify(es256().sign(request(), kNow), keys(), no_audience, kNow).error,
            VerifyError::kWrongAudience);
}

TEST(Jwt, AudienceMustNameThisService) {
  TokenRequest r = request();
  r.audience = "another-api";
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kWrongAudience);
  r.extra = {{"aud", boost::json::array{"another-api", "pix-api"}}};
  EXPECT_TRUE(check(es256().sign(r, kNow)));
  r.extra = {{"aud", boost::json::array{"another-api"}}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kWrongAudience);
  r.extra = {{"aud", boost::json::array{}}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kWrongAudience);
  r.extra = {{"aud", 7}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed);
  r.extra = {{"aud", nullptr}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMissingClaim);
}

TEST(Jwt, SubjectIsRequired) {
  TokenRequest r = request();
  r.extra = {{"sub", nullptr}};
  const auto missing = check(es256().sign(r, kNow));
  EXPECT_EQ(missing.error, VerifyError::kMissingClaim);
  EXPECT_EQ(missing.detail, "sub claim is required");
  r.subject = "";
  r.extra = {};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMissingClaim);
  r.extra = {{"sub", 42}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed);
}

TEST(Jwt, ExpirationIsRequiredAndNumeric) {
  TokenRequest r = request();
  r.extra = {{"exp", nullptr}};
  const auto missing = check(es256().sign(r, kNow));
  EXPECT_EQ(missing.error, VerifyError::kMissingClaim);
  EXPECT_EQ(missing.detail, "exp claim is required");
  const std::int64_t exp = std::chrono::duration_cast<std::chrono::seconds>((kNow + 1h).time_since_epoch()).count();
  r.extra = {{"exp", std::to_string(exp)}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed);
  for (double bad : {-1.0, 1e300}) {
    r.extra = {{"exp", bad}};
    EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed) << bad;
  }
  r.extra = {{"exp", static_cast<double>(exp) + 0.5}};  // NumericDate may have a fraction
  const auto fractional = check(es256().sign(r, kNow));
  ASSERT_TRUE(fractional);
  EXPECT_EQ(fractional.claims->expires_at, kNow + 1h + 500ms);
  r.extra = {{"nbf", "soon"}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed);
  r.extra = {{"iat", boost::json::array{}}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed);
}

TEST(Jwt, ScopesComeFromScopeAndScp) {
  TokenRequest r = request();
  r.scopes = {"publish:pix.payment.requested", "publish:pix.audit.log"};
  auto result = check(es256().sign(r, kNow));
  ASSERT_TRUE(result);
  EXPECT_EQ(result.claims->scopes,
            (std::vector<std::string>{"publish:pix.payment.requested", "publish:pix.audit.log"}));

  r.scopes = {};
  r.extra = {{"scp", boost::json::array{"publish:pix.payment.settled", "read"}}};
  result = check(es256().sign(r, kNow));
  ASSERT_TRUE(result);
  EXPECT_EQ(result.claims->scopes, (std::vector<std::string>{"publish:pix.payment.settled", "read"}));
  EXPECT_TRUE(result.claims->has_scope("publish:pix.payment.settled"));

  r.extra = {{"scp", "a  b"}, {"scope", " c "}};  // Azure AD writes scp as a string; extra spaces are no scope
  result = check(es256().sign(r, kNow));
  ASSERT_TRUE(result);
  EXPECT_EQ(result.claims->scopes, (std::vector<std::string>{"c", "a", "b"}));

  r.extra = {};
  result = check(es256().sign(r, kNow));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result.claims->scopes.empty());

  r.extra = {{"scope", boost::json::array{1, 2}}};
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed);
}

// ---- shape -----------------------------------------------------------------------------------

TEST(Jwt, ExactlyThreeSegments) {
  const auto parts = split(es256().sign(request(), kNow));
  const auto two = check(parts[0] + "." + parts[1]);
  EXPECT_EQ(two.error, VerifyError::kMalformed);
  EXPECT_EQ(two.detail, "token has 2 segments, a JWS has 3");
  EXPECT_EQ(check(join({parts[0], parts[1], parts[2], parts[2]})).error, VerifyError::kMalformed);
  // The five-segment JWE form is not a signed token.
  EXPECT_EQ(check(join({parts[0], parts[1], parts[2], parts[2], parts[2]})).error, VerifyError::kMalformed);
  for (std::string_view bad : {"", ".", "..", "...", "abc"}) EXPECT_EQ(check(bad).error, VerifyError::kMalformed);
}

TEST(Jwt, BadBase64UrlIsMalformed) {
  const auto parts = split(es256().sign(request(), kNow));
  auto std_b64 = [](std::string s) {
    for (auto& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
    return s;
  };
  for (const std::string& token :
       {join({parts[0] + "=", parts[1], parts[2]}), join({parts[0], parts[1], parts[2] + "=="}),
        join({"*" + parts[0], parts[1], parts[2]}), join({parts[0], parts[1] + " ", parts[2]}),
        join({parts[0], parts[1], std_b64(parts[2]) + "+/"}), " " + join(parts), "Bearer " + join(parts)}) {
    EXPECT_EQ(check(token).error, VerifyError::kMalformed) << token;
  }
  // Base64url that decodes, but not to a JSON object.
  EXPECT_EQ(check(join({security::base64url_encode("[1]"), parts[1], parts[2]})).error, VerifyError::kMalformed);
  EXPECT_EQ(check(join({security::base64url_encode("{\"alg\":"), parts[1], parts[2]})).error, VerifyError::kMalformed);
}

TEST(Jwt, OversizedTokenIsRefusedUnparsed) {
  TokenRequest r = request();
  r.extra = {{"padding", std::string(5500, 'p')}};
  const std::string big = es256().sign(r, kNow);
  ASSERT_LT(big.size(), 8192u);
  EXPECT_TRUE(check(big)) << "a large but allowed token";
  r.extra = {{"padding", std::string(7000, 'p')}};
  const std::string too_big = es256().sign(r, kNow);
  ASSERT_GT(too_big.size(), 8192u);
  const auto result = check(too_big);
  EXPECT_EQ(result.error, VerifyError::kMalformed);
  EXPECT_EQ(result.detail, "token is longer than 8192 bytes");
  EXPECT_EQ(check(std::string(100'000, '.')).error, VerifyError::kMalformed);
}

TEST(Jwt, CritHeaderIsRefused) {
  TokenRequest r = request();
  r.extra_header = {{"crit", boost::json::array{"exp"}}, {"exp", 1}};
  const auto result = check(es256().sign(r, kNow));
  EXPECT_EQ(result.error, VerifyError::kMalformed);
  EXPECT_EQ(result.detail, "crit header extensions are not supported");
  r.extra_header = {{"crit", boost::json::array{"b64"}}, {"b64", false}};  // RFC 7797 unencoded payload
  EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed);
}

TEST(Jwt, TypMustBeJwtOrAccessTokenJwt) {
  TokenRequest r = request();
  for (std::string_view typ : {"JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "application/JWT"}) {
    r.extra_header = {{"typ", typ}};
    EXPECT_TRUE(check(es256().sign(r, kNow))) << typ;
  }
  r.extra_header = {{"typ", nullptr}};
  EXPECT_TRUE(check(es256().sign(r, kNow))) << "typ is optional";
  for (std::string_view typ : {"JOSE", "dpop+jwt", "secevent+jwt", "application/", ""}) {
    r.extra_header = {{"typ", typ}};
    EXPECT_EQ(check(es256().sign(r, kNow)).error, VerifyError::kMalformed) << typ;
  }
}

TEST(Jwt, KeysEmbeddedInTheHeaderAreIgnored) {
  // RFC 8725 §3.10: a token naming its own key (jwk, jku, x5u) must not pick the key.
  TokenRequest r = request();
  r.extra_header = {{"jwk", other_es256().public_jwk()}, {"jku", "http://evil.example/jwks.json"}};
  EXPECT_EQ(check(other_es256().sign(r, kNow)).error, VerifyError::kUnknownKey);
}

// ---- the fuzz corpus -------------------------------------------------------------------------

std::string mutate(std::string token, std::mt19937& rng) {
  auto pick = [&rng](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  // The base64url alphabet first (pick(64) draws from it), then what must never get through.
  static constexpr char kCharsData[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \"\\\x00\xff{}";
  static constexpr std::string_view kChars(kCharsData, sizeof(kCharsData) - 1);
  const int rounds = 1 + static_cast<int>(rng() % 3);
  for (int round = 0; round < rounds; ++round) {
    switch (rng() % 9) {
      case 0:
        if (!token.empty()) token[pick(token.size())] = kChars[pick(kChars.size())];
        break;
      case 1:
        if (!token.empty()) token.erase(pick(token.size()), 1 + pick(4));
        break;
      case 2:
        token.insert(pick(token.size() + 1), 1, kChars[pick(kChars.size())]);
        break;
      case 3:
        token.resize(pick(token.size()));
        break;
      case 4: {
        auto parts = split(token);
        if (parts.size() >= 2) std::swap(parts[pick(parts.size())], parts[pick(parts.size())]);
        token = join(parts);
        break;
      }
      case 5: {
        auto parts = split(token);
        std::string random(pick(120), 'A');
        for (auto& c : random) c = kChars[pick(64)];
        parts[pick(parts.size())] = random;
        token = join(parts);
        break;
      }
      case 6: {
        std::string random(pick(400), '\0');
        for (auto& c : random) c = static_cast<char>(rng());
        token = random;
        break;
      }
      case 7: {
        // A header that parses and names a real key, over a stranger's payload and signature.
        auto parts = split(token);
        parts[0] = b64_json({{"alg", "ES256"}, {"kid", es256().kid()}, {"n", static_cast<int>(rng() % 1000)}});
        token = join(parts);
        break;
      }
      default:
        token.insert(pick(token.size() + 1), ".");
        break;
    }
  }
  return token;
}

void expect_presentable(const security::VerifyResult& r, const std::string& token) {
  ASSERT_FALSE(r.detail.empty());
  EXPECT_LE(r.detail.size(), 200u);
  for (const char c : r.detail) {
    ASSERT_TRUE(c >= 0x20 && c < 0x7f && c != '"' && c != '\\') << "detail not header-safe: " << r.detail;
  }
  for (const auto& part : split(token)) {
    if (part.size() >= 16) {
      EXPECT_EQ(r.detail.find(part), std::string::npos) << "detail echoes the token";
    }
  }
}

TEST(Jwt, ThousandMutatedTokensAreAllRefused) {
  std::mt19937 rng(20250101);
  const std::vector<std::string> seeds = {es256().sign(request(), kNow), rs256().sign(request(), kNow),
                                          eddsa().sign(request(), kNow)};
  TokenVerifier verifier(policy(), std::make_shared<const security::KeySet>(
                                       security::parse_jwks(jwks_of({&es256(), &rs256(), &eddsa()})).keys.value()));
  for (const auto& seed : seeds) ASSERT_TRUE(verifier.verify(seed, kNow));
  int tried = 0;
  std::map<VerifyError, int> seen;
  while (tried < 1000) {
    const std::string token = mutate(seeds[static_cast<std::size_t>(tried) % seeds.size()], rng);
    if (std::find(seeds.begin(), seeds.end(), token) != seeds.end()) continue;
    ++tried;
    const auto direct = check(token);
    EXPECT_FALSE(direct) << token;
    expect_presentable(direct, token);
    const auto cached = verifier.verify(token, kNow);
    EXPECT_FALSE(cached) << token;
    EXPECT_EQ(cached.error, direct.error);
    ++seen[direct.error];
  }
  // The corpus reaches past the parser: some mutants get as far as the signature check.
  EXPECT_GT(seen[VerifyError::kBadSignature], 0);
  EXPECT_GT(seen[VerifyError::kMalformed], 0);
  for (const auto& seed : seeds) EXPECT_TRUE(verifier.verify(seed, kNow)) << "refusals left the valid tokens alone";
}

// ---- JWKS ------------------------------------------------------------------------------------

std::string reason_for(const security::JwksParse& parsed, std::string_view kid) {
  for (const auto& s : parsed.skipped) {
    if (s.kid == kid) return s.reason;
  }
  return "(not skipped)";
}

TEST(Jwks, ShortRsaKeysAreSkippedAndTheirTokensRefused) {
  const auto weak = TokenIssuer::generate_rs256(1024);
  const auto parsed = security::parse_jwks(jwks_of({&weak, &es256()}));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.keys->size(), 1u);
  EXPECT_EQ(reason_for(parsed, weak.kid()), "RSA key of 1024 bits (accepted: 2048 to 16384)");
  EXPECT_EQ(security::verify(weak.sign(request(), kNow), *parsed.keys, policy(), kNow).error, VerifyError::kUnknownKey);
}

TEST(Jwks, KeysNotMeantForVerifyingAreSkipped) {
  auto with = [](const TokenIssuer& issuer, boost::json::object changes) {
    auto jwk = issuer.public_jwk();
    for (const auto& [k, v] : changes) {
      if (v.is_null()) {
        jwk.erase(k);
      } else {
        jwk[k] = v;
      }
    }
    return jwk;
  };
  auto off_curve = es256().public_jwk();
  auto y = *security::base64url_decode(off_curve["y"].as_string());
  y[31] = static_cast<char>(y[31] ^ 1);
  off_curve["y"] = security::base64url_encode(y);
  off_curve["kid"] = "off-curve";
  const boost::json::array keys = {
      with(es256(), {{"kid", "enc"}, {"use", "enc"}}),
      with(es256(), {{"kid", "wrap"}, {"key_ops", boost::json::array{"wrapKey"}}}),
      with(es256(), {{"kid", "ops-ok"}, {"key_ops", boost::json::array{"verify"}}}),
      with(rs256(), {{"kid", "rs512"}, {"alg", "RS512"}}),
      with(es256(), {{"kid", "private"}, {"d", "c2VjcmV0"}}),
      with(es256(), {{"kid", nullptr}}),
      with(es256(), {{"kid", "p384"}, {"crv", "P-384"}}),
      boost::json::object{{"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0"}},
      off_curve,
      with(eddsa(), {{"kid", "ed"}}),
      with(eddsa(), {{"kid", "ed"}}),
      with(eddsa(), {{"kid", "short-x"}, {"x", "AAAA"}}),
      "not a key",
  };
  const auto parsed = security::parse_jwks(boost::json::serialize(boost::json::object{{"keys", keys}}));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.keys->kids(), (std::vector<std::string>{"ed", "ops-ok"}));
  EXPECT_EQ(reason_for(parsed, "enc"), "use is not sig");
  EXPECT_EQ(reason_for(parsed, "wrap"), "key_ops does not allow verify");
  EXPECT_EQ(reason_for(parsed, "rs512"), "alg RS512 is not RS256, the only algorithm accepted for this key type");
  EXPECT_EQ(reason_for(parsed, "private"), "holds private key member d; publish only the public key");
  EXPECT_EQ(reason_for(parsed, "p384"), "EC curve P-384 (accepted: P-256)");
  EXPECT_EQ(reason_for(parsed, "hmac"), "symmetric keys (kty oct) are not accepted");
  EXPECT_EQ(reason_for(parsed, "ed"), "duplicate kid");
  EXPECT_EQ(reason_for(parsed, "short-x"), "Ed25519 x must be 32 bytes");
  EXPECT_NE(reason_for(parsed, "off-curve").find("key"), std::string::npos) << reason_for(parsed, "off-curve");
  EXPECT_NE(reason_for(parsed, "off-curve"), "(not skipped)");
  EXPECT_EQ(parsed.skipped.size(), 11u);
  EXPECT_EQ(parsed.skipped.back().reason, "not a JSON object");
  EXPECT_EQ(parsed.skipped.back().index, 12u);
}

TEST(Jwks, DocumentsThatAreNoKeySetAreErrors) {
  for (std::string_view doc : {"", "{", "[]", "{}", R"({"keys":{}})", R"({"keys":"x"})", "null"}) {
    const auto parsed = security::parse_jwks(doc);
    EXPECT_FALSE(parsed) << doc;
    EXPECT_FALSE(parsed.error.empty());
  }
  const auto empty = security::parse_jwks(R"({"keys":[]})");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.keys->empty());
}

// ---- TokenVerifier ---------------------------------------------------------------------------

std::shared_ptr<const security::KeySet> key_set_of(std::initializer_list<const TokenIssuer*> issuers) {
  auto parsed = security::parse_jwks(jwks_of(issuers));
  return std::make_shared<const security::KeySet>(std::move(parsed.keys.value()));
}

TEST(TokenVerifier, SecondVerifyIsACacheHit) {
  TokenVerifier verifier(policy(), key_set_of({&es256()}));
  const std::string token = es256().sign(request(), kNow);
  const auto first = verifier.verify(token, kNow);
  ASSERT_TRUE(first);
  const auto second = verifier.verify(token, kNow + 1s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second.claims, first.claims) << "answered from the cache, not parsed again";
  EXPECT_EQ(verifier.cache_hits(), 1u);
  EXPECT_EQ(verifier.cache_misses(), 1u);
  EXPECT_EQ(verifier.cache_size(), 1u);
}

TEST(TokenVerifier, CachedTokenIsNeverServedPastItsExpiry) {
  TokenVerifier verifier(policy(), key_set_of({&es256()}));
  const std::string token = es256().sign(request(), kNow);
  ASSERT_TRUE(verifier.verify(token, kNow));
  ASSERT_TRUE(verifier.verify(token, kNow + 14min));
  EXPECT_EQ(verifier.cache_hits(), 1u);
  // Past exp the cache is not consulted: inside the leeway the full check still accepts...
  EXPECT_TRUE(verifier.verify(token, kNow + 15min + 30s));
  EXPECT_EQ(verifier.cache_hits(), 1u);
  // ...and past the leeway the token is refused as expired.
  EXPECT_EQ(verifier.verify(token, kNow + 15min + 60s).error, VerifyError::kExpired);
  EXPECT_EQ(verifier.cache_hits(), 1u);
}

TEST(TokenVerifier, ReplacingKeysClearsTheCache) {
  TokenVerifier verifier(policy(), key_set_of({&es256()}));
  const std::string token = es256().sign(request(), kNow);
  ASSERT_TRUE(verifier.verify(token, kNow));
  ASSERT_EQ(verifier.cache_size(), 1u);
  verifier.replace_keys(key_set_of({&eddsa()}));  // es256 retired
  EXPECT_EQ(verifier.cache_size(), 0u);
  EXPECT_EQ(verifier.verify(token, kNow).error, VerifyError::kUnknownKey);
  EXPECT_EQ(verifier.cache_hits(), 0u);
}

TEST(TokenVerifier, FailuresAreNotRemembered) {
  TokenVerifier verifier(policy(), key_set_of({&eddsa()}));
  const std::string token = es256().sign(request(), kNow);
  EXPECT_EQ(verifier.verify(token, kNow).error, VerifyError::kUnknownKey);
  EXPECT_EQ(verifier.cache_size(), 0u);
  verifier.replace_keys(key_set_of({&eddsa(), &es256()}));  // the key arrives with the next JWKS
  EXPECT_TRUE(verifier.verify(token, kNow));
  TokenRequest r = request();
  r.not_before = kNow + 5min;
  const std::string early = es256().sign(r, kNow);
  EXPECT_EQ(verifier.verify(early, kNow).error, VerifyError::kNotYetValid);
  EXPECT_TRUE(verifier.verify(early, kNow + 5min));
}

TEST(TokenVerifier, CacheIsBounded) {
  TokenVerifier verifier(policy(), key_set_of({&es256()}), 3);
  std::vector<std::string> tokens;
  for (int i = 0; i < 5; ++i) tokens.push_back(es256().sign(request(), kNow));
  for (const auto& t : tokens) ASSERT_TRUE(verifier.verify(t, kNow));
  EXPECT_EQ(verifier.cache_size(), 3u);
  ASSERT_TRUE(verifier.verify(tokens[4], kNow));  // the newest stayed
  EXPECT_EQ(verifier.cache_hits(), 1u);
  ASSERT_TRUE(verifier.verify(tokens[0], kNow));  // the oldest was evicted, and still verifies
  EXPECT_EQ(verifier.cache_hits(), 1u);
  EXPECT_EQ(verifier.cache_size(), 3u);
}

TEST(TokenVerifier, OversizedTokensAreRefusedBeforeTheCache) {
  TokenVerifier verifier(policy(), key_set_of({&es256()}));
  EXPECT_EQ(verifier.verify(std::string(1 << 20, 'a'), kNow).error, VerifyError::kMalformed);
  EXPECT_EQ(verifier.cache_size(), 0u);
}

TEST(TokenVerifier, ValidTokensStayValidWhileKeysAreReloadedConcurrently) {
  TokenVerifier verifier(policy(), key_set_of({&es256(), &eddsa()}));
  const std::vector<std::string> tokens = {es256().sign(request(), kNow), eddsa().sign(request(), kNow),
                                           es256().sign(request(), kNow)};
  std::atomic<int> refused{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        if (!verifier.verify(tokens[static_cast<std::size_t>(i + t) % tokens.size()], kNow)) ++refused;
      }
    });
  }
  std::thread reloader([&] {
    while (!stop) verifier.replace_keys(key_set_of({&es256(), &eddsa()}));
  });
  for (auto& th : threads) th.join();
  stop = true;
  reloader.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(verifier.cache_hits() + verifier.cache_misses(), 900u);
}

// ---- JwksSource ------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "pix_jwt_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;  // best effort: a leftover temp dir is not a test failure
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Replaces `path` in one step (write beside, rename over), as an operator should.
void replace_file(const std::string& path, std::string_view contents) {
  const std::string temporary = path + ".new";
  std::ofstream(temporary, std::ios::trunc) << contents;
  std::filesystem::rename(temporary, path);
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(JwksSource, ReloadsTheFileWhenItChangesAndKeepsTheLastGoodSet) {
  TempDir dir;
  const std::string path = dir.file("jwks.json");
  es256().save_jwks_file(path);
  TokenVerifier verifier(policy());
  security::JwksSource source({path, 300s, 10ms}, verifier);
  EXPECT_EQ(source.loads(), 1u);
  const auto now = Clock::now();
  const std::string old_token = es256().sign(request(), now);
  const std::string new_token = eddsa().sign(request(), now);
  EXPECT_TRUE(verifier.verify(old_token, now));
  EXPECT_EQ(verifier.verify(new_token, now).error, VerifyError::kUnknownKey);

  eddsa().save_jwks_file(path);  // rotation: the old key is gone from the new set
  EXPECT_TRUE(eventually([&] { return static_cast<bool>(verifier.verify(new_token, now)); }));
  EXPECT_EQ(verifier.verify(old_token, now).error, VerifyError::kUnknownKey);
  EXPECT_EQ(source.loads(), 2u);

  replace_file(path, R"({"keys": [)");  // a broken edit
  EXPECT_TRUE(eventually([&] { return source.failures() >= 1; }));
  EXPECT_TRUE(verifier.verify(new_token, now)) << "the last good key set stays in use";
  replace_file(path, R"({"keys": []})");  // valid, but no key at all
  EXPECT_TRUE(eventually([&] { return source.failures() >= 2; }));
  EXPECT_TRUE(verifier.verify(new_token, now));
  EXPECT_EQ(source.loads(), 2u);
}

TEST(JwksSource, FirstLoadFailureStopsStartUp) {
  TempDir dir;
  TokenVerifier verifier(policy());
  EXPECT_THROW(security::JwksSource({dir.file("missing.json")}, verifier), std::runtime_error);
  std::ofstream(dir.file("weak.json")) << jwks_of({});
  EXPECT_THROW(security::JwksSource({dir.file("weak.json")}, verifier), std::runtime_error);
  try {
    security::JwksSource source({"http://127.0.0.1:1/jwks.json", 300s, 1s, 5s}, verifier);
    ADD_FAILURE() << "unreachable server accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("connect to 127.0.0.1:1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(security::JwksSource({dir.file("weak.json"), 0s}, verifier), std::invalid_argument);
  for (std::string_view url :
       {"http://user:pw@127.0.0.1/jwks", "http:///jwks", "http://host:99999/", "ftp://x/y", "https://[::1/jwks"}) {
    EXPECT_THROW(security::JwksSource({std::string(url)}, verifier), std::runtime_error) << url;
  }
}

// Serves one HTTP response on 127.0.0.1 (port 0, read back) and records the request target;
// over TLS with `cert` (prefix of .crt/.key) when given.
class OneShotHttpServer {
 public:
  OneShotHttpServer(std::string body, unsigned status, const std::string& cert = {})
      : tls_(boost::asio::ssl::context::tls_server),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        endpoint_(acceptor_.local_endpoint()),
        https_(!cert.empty()) {
    if (https_) {
      tls_.use_certificate_chain_file(cert + ".crt");
      tls_.use_private_key_file(cert + ".key", boost::asio::ssl::context::pem);
    }
    thread_ = std::thread([this, body = std::move(body), status] {
      boost::beast::error_code ec;
      boost::asio::ip::tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      if (!https_) {
        serve(socket, body, status);
        socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        return;
      }
      boost::asio::ssl::stream<boost::asio::ip::tcp::socket&> stream(socket, tls_);
      stream.handshake(boost::asio::ssl::stream_base::server, ec);
      if (ec) {
        std::lock_guard lock(mutex_);
        handshake_error_ = ec.message();
        return;
      }
      serve(stream, body, status);
      stream.shutdown(ec);
    });
  }
  ~OneShotHttpServer() {
    // Unblocks accept() when no client came; harmless otherwise.
    boost::asio::ip::tcp::socket poke(ioc_);
    boost::beast::error_code ec;
    poke.connect(endpoint_, ec);
    poke.close(ec);
    thread_.join();
  }
  OneShotHttpServer(const OneShotHttpServer&) = delete;
  OneShotHttpServer& operator=(const OneShotHttpServer&) = delete;

  std::string url(std::string_view path, std::string_view host = "127.0.0.1") const {
    return std::string(https_ ? "https://" : "http://") + std::string(host) + ":" + std::to_string(endpoint_.port()) +
           std::string(path);
  }
  std::string target() const {
    std::lock_guard lock(mutex_);
    return target_;
  }

 private:
  template <class Stream>
  void serve(Stream& stream, const std::string& body, unsigned status) {
    namespace http = boost::beast::http;
    boost::beast::error_code ec;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(stream, buffer, req, ec);
    if (ec) return;
    {
      std::lock_guard lock(mutex_);
      target_ = std::string(req.target());
    }
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.body() = body;
    res.prepare_payload();
    http::write(stream, res, ec);
  }

  boost::asio::io_context ioc_;
  boost::asio::ssl::context tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const boost::asio::ip::tcp::endpoint endpoint_;  // read once: the acceptor belongs to the server thread
  const bool https_;
  mutable std::mutex mutex_;
  std::string target_;
  std::string handshake_error_;
  std::thread thread_;
};

TEST(JwksSource, LoadsFromAnHttpUrl) {
  OneShotHttpServer server(es256().jwks_json(), 200);
  TokenVerifier verifier(policy());
  security::JwksSource source({server.url("/.well-known/jwks.json?v=1")}, verifier);
  EXPECT_EQ(server.target(), "/.well-known/jwks.json?v=1");
  EXPECT_EQ(verifier.keys()->kids(), std::vector<std::string>{es256().kid()});
  EXPECT_TRUE(verifier.verify(es256().sign(request())));
}

TEST(JwksSource, HttpErrorStatusIsAFailedLoad) {
  OneShotHttpServer server("not here", 404);
  TokenVerifier verifier(policy());
  try {
    security::JwksSource source({server.url("/jwks.json")}, verifier);
    ADD_FAILURE() << "404 accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
  }
}

// The load's error names the step that failed and, for a refused certificate, OpenSSL's reason.
std::string first_load_error(const security::JwksSource::Options& options) {
  TokenVerifier verifier(policy());
  try {
    security::JwksSource source(options, verifier);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "loaded";
}

TEST(JwksSource, LoadsFromAnHttpsUrlWhoseCertificateChainsToTheCa) {
  test::TestPki pki;
  for (std::string_view host : {"127.0.0.1", "localhost"}) {  // IP SAN, then DNS SAN (and SNI)
    OneShotHttpServer server(es256().jwks_json(), 200, pki.server);
    TokenVerifier verifier(policy());
    security::JwksSource::Options o{server.url("/.well-known/jwks.json", host)};
    o.ca_file = pki.ca;
    security::JwksSource source(o, verifier);
    EXPECT_EQ(server.target(), "/.well-known/jwks.json") << host;
    EXPECT_TRUE(verifier.verify(es256().sign(request()))) << host;
  }
}

TEST(JwksSource, HttpsServerIsRefusedUnlessItsCertificateIsTrustedForTheHost) {
  test::TestPki pki;
  {
    OneShotHttpServer server(es256().jwks_json(), 200, pki.server);
    security::JwksSource::Options o{server.url("/jwks.json")};
    o.ca_file = pki.other_ca;  // a CA that did not sign the server's certificate
    const auto error = first_load_error(o);
    EXPECT_NE(error.find("TLS handshake with 127.0.0.1:"), std::string::npos) << error;
    EXPECT_NE(error.find("unable to get local issuer certificate"), std::string::npos) << error;
  }
  {
    OneShotHttpServer server(es256().jwks_json(), 200, pki.server);
    security::JwksSource::Options o{server.url("/jwks.json")};  // the system's CAs know no test CA
    EXPECT_NE(first_load_error(o).find("TLS handshake"), std::string::npos);
  }
  // Trusted CA, but the certificate names another server.
  const std::string elsewhere = pki.issue("main", "idp", true, "DNS:idp.example");
  for (auto [host, why] :
       {std::pair{"127.0.0.1", "IP address mismatch"}, std::pair{"localhost", "hostname mismatch"}}) {
    OneShotHttpServer server(es256().jwks_json(), 200, elsewhere);
    security::JwksSource::Options o{server.url("/jwks.json", host)};
    o.ca_file = pki.ca;
    const auto error = first_load_error(o);
    EXPECT_NE(error.find(why), std::string::npos) << error;
  }
  {
    OneShotHttpServer plain(es256().jwks_json(), 200);  // https:// to a server that speaks http
    security::JwksSource::Options o{"https" + plain.url("/jwks.json").substr(4)};
    o.ca_file = pki.ca;
    EXPECT_NE(first_load_error(o).find("TLS handshake"), std::string::npos);
  }
  security::JwksSource::Options o{"https://127.0.0.1:1/jwks.json"};
  o.ca_file = pki.dir + "/absent.crt";
  EXPECT_NE(first_load_error(o).find("cannot load CA file"), std::string::npos);
}

// ---- the development issuer ------------------------------------------------------------------

TEST(TokenIssuer, KidIsTheRfc7638Thumbprint) {
  const boost::json::object rfc_example = {{"kty", "RSA"},
                                           {"n",
                                            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFF"
                                            "xuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjh"
                                            "Mstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
                                            "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5"
                                            "hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
                                            "xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
                                           {"e", "AQAB"},
                                           {"alg", "RS256"},
                                           {"kid", "2011-04-29"}};
  EXPECT_EQ(security::jwk_thumbprint(rfc_example), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  for (const TokenIssuer* issuer : {&es256(), &rs256(), &eddsa()}) {
    EXPECT_EQ(security::jwk_thumbprint(issuer->public_jwk()), issuer->kid());
    EXPECT_EQ(issuer->kid().size(), 43u);
  }
  EXPECT_NE(es256().kid(), other_es256().kid());
}

TEST(TokenIssuer, PemKeyIsPrivateToItsOwnerAndLoadsBack) {
  TempDir dir;
  const std::string path = dir.file("issuer.pem");
  const auto issuer = TokenIssuer::generate_es256();
  issuer.save_pem_file(path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THROW(TokenIssuer::generate_es256().save_pem_file(path), std::runtime_error) << "never overwrites a key";

  const auto loaded = TokenIssuer::load_pem_file(path);
  EXPECT_EQ(loaded.kid(), issuer.kid());
  EXPECT_EQ(loaded.algorithm(), security::Algorithm::kEs256);
  const auto set = security::parse_jwks(issuer.jwks_json());
  ASSERT_TRUE(set);
  EXPECT_TRUE(security::verify(loaded.sign(request(), kNow), *set.keys, policy(), kNow));

  for (const TokenIssuer* other : {&rs256(), &eddsa()}) {
    EXPECT_EQ(TokenIssuer::from_pem(other->private_key_pem()).kid(), other->kid());
  }
  EXPECT_THROW(TokenIssuer::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
               std::runtime_error);
  EXPECT_THROW(TokenIssuer::load_pem_file(dir.file("absent.pem")), std::runtime_error);
}

TEST(TokenIssuer, TokensCarryTheFieldsTheGatewayReads) {
  TokenRequest r = request();
  r.not_before = kNow;
  const auto parts = split(es256().sign(r, kNow));
  const auto header = decode_segment(parts[0]);
  EXPECT_EQ(header.at("alg").as_string(), "ES256");
  EXPECT_EQ(header.at("typ").as_string(), "JWT");
  EXPECT_EQ(header.at("kid").as_string(), es256().kid());
  const auto payload = decode_segment(parts[1]);
  EXPECT_EQ(payload.at("iss").as_string(), kIssuer);
  EXPECT_EQ(payload.at("aud").as_string(), "pix-api");
  EXPECT_EQ(payload.at("iat").as_int64(), 1'700'000'000);
  EXPECT_EQ(payload.at("nbf").as_int64(), 1'700'000'000);
  EXPECT_EQ(payload.at("exp").as_int64(), 1'700'000'900);
  EXPECT_EQ(payload.at("scope").as_string(), "publish:pix.payment.requested");
  EXPECT_NE(payload.at("jti").as_string(), decode_segment(split(es256().sign(r, kNow))[1]).at("jti").as_string());
}

TEST(TokenIssuer, TtlAcceptsSecondsMinutesHoursAndDays) {
  EXPECT_EQ(security::parse_ttl("30s"), 30s);
  EXPECT_EQ(security::parse_ttl("15m"), 15min);
  EXPECT_EQ(security::parse_ttl("1h"), 1h);
  EXPECT_EQ(security::parse_ttl("2d"), 48h);
  for (std::string_view bad : {"", "1", "h", "0s", "-1h", "1.5h", "1w", "1H", "1h30m", "367d", " 1h", "99999999999s"}) {
    EXPECT_FALSE(security::parse_ttl(bad)) << bad;
  }
}

TEST(TokenIssuer, ScopesAreGrantedForTheFiveTopicsOnly) {
  for (const auto topic : domain::kTopicNames) {
    EXPECT_EQ(security::scope_for_topic(topic), "publish:" + std::string(topic));
  }
  for (std::string_view bad : {"", "pix.payment", "pix.payment.requested ", "publish:pix.audit.log", "*"}) {
    EXPECT_FALSE(security::scope_for_topic(bad)) << bad;
  }
}

TEST(VerifyErrorNames, AreStableForLogsAndMetrics) {
  EXPECT_EQ(security::to_string(VerifyError::kMalformed), "malformed");
  EXPECT_EQ(security::to_string(VerifyError::kUnsupportedAlgorithm), "unsupported_algorithm");
  EXPECT_EQ(security::to_string(VerifyError::kUnknownKey), "unknown_key");
  EXPECT_EQ(security::to_string(VerifyError::kBadSignature), "bad_signature");
  EXPECT_EQ(security::to_string(VerifyError::kExpired), "expired");
  EXPECT_EQ(security::to_string(VerifyError::kNotYetValid), "not_yet_valid");
  EXPECT_EQ(security::to_string(VerifyError::kWrongIssuer), "wrong_issuer");
  EXPECT_EQ(security::to_string(VerifyError::kWrongAudience), "wrong_audience");
  EXPECT_EQ(security::to_string(VerifyError::kMissingClaim), "missing_claim");
}

}  // namespace
}  // namespace pix
