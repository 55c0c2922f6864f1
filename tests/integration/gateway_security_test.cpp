// The gateway's edge: HTTPS, bearer tokens, client certificates, scopes, abuse limits. The real
// pix-api binary, the real Kafka broker; certificates and tokens made for each run.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "pix/security/base64url.hpp"
#include "pix/security/token_issuer.hpp"
#include "support/http_client.hpp"
#include "support/kafka_test_consumer.hpp"
#include "support/service_process.hpp"
#include "support/test_pki.hpp"

namespace pix::test {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

constexpr const char* kIssuer = "https://issuer.test/pix";

std::string payment(const std::string& topic = "pix.payment.requested") {
  return R"({"topic":")" + topic +
         R"(","value":{"transactionId":"sec-1","amount":"10.00","payer":"alice","receiver":"bob","status":"validated"}})";
}

// Problem types are URNs ending in the kind (urn:pix-pubsub:problem:<kind>).
bool problem_type_is(const std::string& body, const std::string& kind) {
  const std::string type(json::parse(body).at("type").as_string());
  return type.size() >= kind.size() && type.compare(type.size() - kind.size(), kind.size(), kind) == 0 &&
         type[type.size() - kind.size() - 1] == ':';
}

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class GatewaySecurity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TestPki();
    issuer_ = new security::TokenIssuer(security::TokenIssuer::generate_es256());
    jwks_ = pki_->dir + "/jwks.json";
    issuer_->save_jwks_file(jwks_);
    gateway_ = new GatewayProcess(args());
  }
  static void TearDownTestSuite() {
    delete gateway_;
    delete issuer_;
    delete pki_;
  }
  static std::vector<std::string> args(std::vector<std::string> more = {}) {
    std::vector<std::string> a{"--broker",
                               "kafka",
                               "--kafka-bootstrap",
                               kafka_bootstrap(),
                               "--tls-cert",
                               pki_->server + ".crt",
                               "--tls-key",
                               pki_->server + ".key",
                               "--tls-client-ca",
                               pki_->ca,
                               "--auth",
                               "jwt",
                               "--jwks",
                               jwks_,
                               "--jwt-issuer",
                               kIssuer};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  void SetUp() override {
    HttpClient c(gateway_->port(), tls());
    ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s)) << gateway_->logs();
  }
  static TlsClientOptions tls() { return {pki_->ca, "", ""}; }
  static std::string token(std::vector<std::string> scopes = {"publish:pix.payment.requested"},
                           std::string subject = "bank-app") {
    security::TokenRequest r;
    r.subject = std::move(subject);
    r.issuer = kIssuer;
    r.scopes = std::move(scopes);
    return issuer_->sign(r);
  }
  static std::map<std::string, std::string> bearer(const std::string& t) { return {{"Authorization", "Bearer " + t}}; }

  static TestPki* pki_;
  static security::TokenIssuer* issuer_;
  static std::string jwks_;
  static GatewayProcess* gateway_;
};
TestPki* GatewaySecurity::pki_ = nullptr;
security::TokenIssuer* GatewaySecurity::issuer_ = nullptr;
std::string GatewaySecurity::jwks_;
GatewayProcess* GatewaySecurity::gateway_ = nullptr;

TEST_F(GatewaySecurity, NoCredentialsIs401WithABearerChallenge) {
  HttpClient c(gateway_->port(), tls());
  auto r = c.post_json("/kafka", payment());
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  EXPECT_EQ(r.header("www-authenticate").rfind("Bearer realm=\"pix-api\"", 0), 0u) << r.header("www-authenticate");
  EXPECT_TRUE(problem_type_is(r.body, "unauthorized")) << r.body;
  // Probes and metrics stay open: the orchestrator has no token.
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST_F(GatewaySecurity, EveryKindOfBadTokenIs401InvalidToken) {
  security::TokenRequest base;
  base.subject = "bank-app";
  base.issuer = kIssuer;
  base.scopes = {"publish:pix.payment.requested"};
  auto signed_with = [&](auto change) {
    security::TokenRequest r = base;
    change(r);
    return issuer_->sign(r);
  };
  const auto now = std::chrono::system_clock::now();
  const std::string good = issuer_->sign(base);
  const auto dot = good.find('.');
  const auto dot2 = good.rfind('.');
  const std::string header = good.substr(0, dot);
  const std::string tampered_payload =
      header + "." +
      security::base64url_encode(R"({"sub":"bank-app","iss":")" + std::string(kIssuer) +
                                 R"(","aud":"pix-api","exp":9999999999,"scope":"publish:pix.payment.validated"})") +
      good.substr(dot2);
  const std::string alg_none =
      security::base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + good.substr(dot + 1, dot2 - dot - 1) + ".";
  const security::TokenIssuer stranger = security::TokenIssuer::generate_es256();

  const std::map<std::string, std::string> cases = {
      {"garbage", "not-a-token"},
      {"expired", signed_with([&](auto& r) {
         r.extra["exp"] = std::chrono::duration_cast<std::chrono::seconds>((now - 1h).time_since_epoch()).count();
       })},
      {"wrong audience", signed_with([](auto& r) { r.audience = "someone-else"; })},
      {"wrong issuer", signed_with([](auto& r) { r.issuer = "https://evil.test"; })},
      {"not yet valid", signed_with([&](auto& r) { r.not_before = now + 1h; })},
      {"tampered payload", tampered_payload},
      {"alg none", alg_none},
      {"unknown kid", stranger.sign(base)},
  };
  HttpClient c(gateway_->port(), tls());
  for (const auto& [what, t] : cases) {
    auto r = c.post_json("/kafka", payment(), bearer(t));
    EXPECT_EQ(r.status, 401) << what << ": " << r.body;
    EXPECT_NE(r.header("www-authenticate").find("error=\"invalid_token\""), std::string::npos)
        << what << ": " << r.header("www-authenticate");
    EXPECT_EQ(r.body.find(t), std::string::npos) << what << ": the token must not be echoed";
  }
  // A token in the query string is refused even when it is valid (RFC 6750 §2.3: it leaks).
  auto q = c.post_json("/kafka?access_token=" + good, payment());
  EXPECT_EQ(q.status, 401) << q.body;
  EXPECT_NE(q.body.find("query string"), std::string::npos) << q.body;
  // Not a bearer credential at all.
  EXPECT_EQ(c.post_json("/kafka", payment(), {{"Authorization", "Basic YWxpY2U6c2VjcmV0"}}).status, 401);
  // And the server still serves a good one on the same connection.
  EXPECT_EQ(c.post_json("/kafka", payment(), bearer(good)).status, 200);
}

TEST_F(GatewaySecurity, AValidTokenPublishesAndTheEventSaysWhoAsked) {
  HttpClient c(gateway_->port(), tls());
  auto r = c.post_json("/kafka", payment(), bearer(token({"publish:pix.payment.requested"}, "bank-app-7")));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = json::parse(r.body).as_object();
  auto rec = read_one(kafka_bootstrap(), "pix.payment.requested",
                      static_cast<std::int32_t>(body.at("partition").as_int64()), body.at("offset").as_int64());
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->header("ce_principal"), "bank-app-7");
  EXPECT_EQ(rec->header("ce_id"), std::string(body.at("eventId").as_string()));
}

TEST_F(GatewaySecurity, ATopicOutsideTheTokensScopesIs403NamingTheScope) {
  HttpClient c(gateway_->port(), tls());
  const std::string t = token({"publish:pix.payment.requested"});
  auto r = c.post_json("/kafka", payment("pix.payment.validated"), bearer(t));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("publish:pix.payment.validated"), std::string::npos) << r.body;
  EXPECT_EQ(json::parse(r.body).at("field").as_string(), "topic");
  EXPECT_NE(r.header("www-authenticate").find("insufficient_scope"), std::string::npos);
  // Holding the scope is enough.
  EXPECT_EQ(
      c.post_json("/kafka", payment("pix.payment.validated"), bearer(token({"publish:pix.payment.validated"}))).status,
      200);
}

TEST_F(GatewaySecurity, PlaintextHttpToTheHttpsPortGetsNoAnswer) {
  HttpClient plain(gateway_->port());
  EXPECT_ANY_THROW(plain.post_json("/kafka", payment(), bearer(token())));
}

TEST_F(GatewaySecurity, AServerCertificateFromAnUntrustedCaIsRefusedByTheClient) {
  HttpClient c(gateway_->port(), TlsClientOptions{pki_->other_ca, "", ""});
  EXPECT_ANY_THROW(c.request("GET", "/healthz"));
}

TEST_F(GatewaySecurity, AVerifiedClientCertificateIsAPrincipalWithTheDefaultScope) {
  HttpClient c(gateway_->port(), TlsClientOptions{pki_->ca, pki_->client + ".crt", pki_->client + ".key"});
  auto r = c.post_json("/kafka", payment());
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = json::parse(r.body).as_object();
  auto rec = read_one(kafka_bootstrap(), "pix.payment.requested",
                      static_cast<std::int32_t>(body.at("partition").as_int64()), body.at("offset").as_int64());
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->header("ce_principal"), "x509:partner-bank");
  EXPECT_EQ(c.post_json("/kafka", payment("pix.payment.settled")).status, 403);
  // A certificate from a CA the gateway does not trust ends the handshake.
  HttpClient stranger(gateway_->port(), TlsClientOptions{pki_->ca, pki_->stranger + ".crt", pki_->stranger + ".key"});
  EXPECT_ANY_THROW(stranger.post_json("/kafka", payment()));
}

TEST_F(GatewaySecurity, AThousandMalformedTokensAndHeadersLeaveTheServerServingWithFlatMemory) {
  std::mt19937 rng(7);
  const std::string good = token();
  auto mutate = [&](std::string t) {
    std::uniform_int_distribution<int> kind(0, 5), byte(0, 255);
    // Never the last character: in a base64url signature its low bits are padding, and changing
    // only those would leave a valid token.
    std::uniform_int_distribution<std::size_t> pos(0, t.size() - 2);
    switch (kind(rng)) {
      case 0: {
        const std::size_t at = pos(rng);
        const char was = t[at];
        do t[at] = static_cast<char>(byte(rng) % 94 + 33);
        while (t[at] == was);
        break;
      }
      case 1:
        t.erase(pos(rng));
        break;
      case 2:
        t.insert(pos(rng), std::string(1 + pos(rng) % 40, '.'));
        break;
      case 3:
        t += t;
        break;
      case 4:
        std::shuffle(t.begin(), t.end(), rng);
        break;
      default:
        t = std::string(9000 + pos(rng), 'A');
        break;
    }
    return t;
  };
  // A gateway of its own, whose AddressSanitizer (debug builds) keeps almost no freed memory in
  // quarantine: otherwise RSS grows by design and says nothing about leaks.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string saved = asan ? asan : "";
  ::setenv("ASAN_OPTIONS", (saved + (saved.empty() ? "" : ":") + "quarantine_size_mb=1").c_str(), 1);
  GatewayProcess gw(args());
  if (asan)
    ::setenv("ASAN_OPTIONS", saved.c_str(), 1);
  else
    ::unsetenv("ASAN_OPTIONS");
  HttpClient c(gw.port(), tls());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s)) << gw.logs();
  auto round = [&] {
    for (int i = 0; i < 1000; ++i) {
      std::string t = mutate(good);
      // Header values cannot hold CR/LF or NUL; the mutation stays printable.
      std::map<std::string, std::string> h{{"Authorization", (i % 7 == 0 ? "bearer  " : "Bearer ") + t}};
      if (i % 5 == 0) h["X-Junk-" + std::to_string(i)] = std::string(100 + i, 'x');
      const int status = c.post_json("/kafka", payment(), h).status;
      ASSERT_TRUE(status == 401 || status == 431) << status << " for mutation " << i;
    }
  };
  round();
  const long after_first = rss_kb(gw.pid());
  round();
  round();
  const long after_third = rss_kb(gw.pid());
  EXPECT_EQ(c.post_json("/kafka", payment(), bearer(good)).status, 200) << gw.logs();
  // Flat: two more rounds of the same garbage do not grow the server by more than allocator noise.
  EXPECT_LT(after_third - after_first, 16 * 1024) << after_first << " kB -> " << after_third << " kB";
}

TEST_F(GatewaySecurity, HeadIsAnsweredWithoutABodyAndTheConnectionStaysUsable) {
  HttpClient c(gateway_->port(), tls());
  auto head = c.request("HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_NE(head.header("content-length"), "0");
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST_F(GatewaySecurity, TooManyHeaderFieldsIs431) {
  HttpClient c(gateway_->port(), tls());
  std::map<std::string, std::string> h{{"Content-Type", "application/json"}};
  for (int i = 0; i < 150; ++i) h["X-Field-" + std::to_string(i)] = "v";
  EXPECT_EQ(c.request("POST", "/kafka", payment(), h).status, 431);
}

TEST_F(GatewaySecurity, ANewCertificateIsServedAfterSighupWithoutARestart) {
  // A gateway of its own, whose certificate files this test replaces.
  const std::string cert = pki_->dir + "/reload.crt", key = pki_->dir + "/reload.key";
  std::filesystem::copy_file(pki_->server + ".crt", cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(pki_->server + ".key", key, std::filesystem::copy_options::overwrite_existing);
  GatewayProcess gw(
      {"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap(), "--tls-cert", cert, "--tls-key", key});
  EXPECT_EQ(HttpClient(gw.port(), tls()).request("GET", "/healthz").status, 200);
  HttpClient kept(gw.port(), tls());
  ASSERT_EQ(kept.request("GET", "/healthz").status, 200);

  const std::string fresh = pki_->issue("other", "server", true);
  std::filesystem::copy_file(fresh + ".crt", cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(fresh + ".key", key, std::filesystem::copy_options::overwrite_existing);
  gw.signal(SIGHUP);
  const TlsClientOptions trusts_other{pki_->other_ca, "", ""};
  EXPECT_TRUE(eventually(
      [&] {
        try {
          return HttpClient(gw.port(), trusts_other).request("GET", "/healthz").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      10s))
      << gw.logs();
  EXPECT_ANY_THROW(HttpClient(gw.port(), tls()).request("GET", "/healthz"));
  // The connection opened before the reload keeps its session.
  EXPECT_EQ(kept.request("GET", "/healthz").status, 200);
}

TEST(GatewayLimits, ThePerPrincipalRateLimitAnswers429AndRecovers) {
  GatewayProcess gw(
      {"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap(), "--rate-limit", "2", "--rate-burst", "3"});
  HttpClient c(gw.port());
  ASSERT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200; }, 30s)) << gw.logs();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.post_json("/kafka", payment()).status, 200) << i;
  auto limited = c.post_json("/kafka", payment());
  ASSERT_EQ(limited.status, 429) << limited.body;
  const int retry_after = std::stoi(limited.header("retry-after"));
  EXPECT_GE(retry_after, 1);
  EXPECT_TRUE(problem_type_is(limited.body, "rate-limited")) << limited.body;
  std::this_thread::sleep_for(std::chrono::seconds(retry_after));
  EXPECT_EQ(c.post_json("/kafka", payment()).status, 200);
  HttpClient metrics(gw.port());
  EXPECT_NE(metrics.request("GET", "/metrics").body.find("pix_rate_limited_total 1"), std::string::npos);
}

TEST(GatewayLimits, TheConnectionCapAnswers503AndRecovers) {
  GatewayProcess gw({"--broker", "kafka", "--kafka-bootstrap", kafka_bootstrap(), "--max-connections", "2"});
  HttpClient a(gw.port()), b(gw.port());
  ASSERT_TRUE(eventually([&] { return a.request("GET", "/readyz").status == 200; }, 30s)) << gw.logs();
  ASSERT_EQ(b.request("GET", "/healthz").status, 200);
  {
    HttpClient third(gw.port());
    auto r = third.request("GET", "/healthz");
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_TRUE(problem_type_is(r.body, "too-many-connections")) << r.body;
    EXPECT_FALSE(r.header("retry-after").empty());
  }
  b.request("GET", "/healthz", "", {{"Connection", "close"}});  // frees a slot
  EXPECT_TRUE(eventually([&] { return HttpClient(gw.port()).request("GET", "/healthz").status == 200; }, 10s));
}

}  // namespace
}  // namespace pix::test
