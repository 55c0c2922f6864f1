#include "pix/security/decision_signature.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "pix/saga/provenance.hpp"
#include "pix/util/random_id.hpp"

namespace pix {
namespace {

using security::DecisionKey;
using security::DecisionVerifier;
using security::SignatureError;

DecisionKey key_of(const std::string& stage) {
  return security::parse_decision_key(security::generate_decision_key_json(stage));
}

const DecisionKey& antifraud_key() {
  static const DecisionKey k = key_of("antifraud");
  return k;
}

const std::string kInput = security::signing_input("pix.payment.validated", "tx-1", "p-1:validated", R"({"a":1})");

TEST(DecisionSignature, ASignatureVerifiesOnlyForTheExactRecordItWasMadeFor) {
  const DecisionVerifier verifier({antifraud_key()}, "antifraud");
  const std::string sig = security::sign_decision(antifraud_key(), kInput);
  EXPECT_EQ(sig.rfind("v1;kid=" + antifraud_key().kid + ";sig=", 0), 0u) << sig;
  EXPECT_EQ(verifier.verify(sig, kInput), std::nullopt);
  // Any field changed: topic, key, id, value (a status flipped, money redirected).
  for (const auto& other : {security::signing_input("pix.payment.settled", "tx-1", "p-1:validated", R"({"a":1})"),
                            security::signing_input("pix.payment.validated", "tx-2", "p-1:validated", R"({"a":1})"),
                            security::signing_input("pix.payment.validated", "tx-1", "p-2:validated", R"({"a":1})"),
                            security::signing_input("pix.payment.validated", "tx-1", "p-1:validated", R"({"a":2})"),
                            // Length prefixes: moving a byte from one field to the next is a different input.
                            security::signing_input("pix.payment.validated", "tx-1p", "-1:validated", R"({"a":1})")}) {
    EXPECT_EQ(verifier.verify(sig, other), SignatureError::kBadSignature);
  }
}

TEST(DecisionSignature, OnlyTheRequiredStagesKnownKeysAreAccepted) {
  const DecisionKey settlement = key_of("settlement");
  const DecisionKey stranger = key_of("antifraud");  // right stage name, but not a trusted key
  const DecisionVerifier verifier({antifraud_key(), settlement}, "antifraud");
  EXPECT_EQ(verifier.verify("", kInput), SignatureError::kMissing);
  EXPECT_EQ(verifier.verify(security::sign_decision(settlement, kInput), kInput), SignatureError::kWrongStage);
  EXPECT_EQ(verifier.verify(security::sign_decision(stranger, kInput), kInput), SignatureError::kUnknownKey);
  // Same kid, another secret: a forger who knows the kid only.
  DecisionKey forged = antifraud_key();
  forged.secret = std::string(32, 'x');
  EXPECT_EQ(verifier.verify(security::sign_decision(forged, kInput), kInput), SignatureError::kBadSignature);
  const std::string good = security::sign_decision(antifraud_key(), kInput);
  for (const std::string& bad :
       {std::string("v2") + good.substr(2), good.substr(0, good.size() - 4), std::string("v1;sig=abc"),
        std::string("v1;kid=;sig=") + good.substr(good.find("sig=") + 4), std::string("garbage")}) {
    EXPECT_EQ(verifier.verify(bad, kInput), SignatureError::kMalformed) << bad;
  }
}

TEST(DecisionSignature, KeyDocumentsAreCheckedMemberByMember) {
  const DecisionKey k = key_of("settlement");
  EXPECT_EQ(k.stage, "settlement");
  EXPECT_EQ(k.kid.rfind("settlement-", 0), 0u);
  EXPECT_EQ(k.secret.size(), 32u);
  EXPECT_NE(key_of("settlement").secret, k.secret);
  auto error_of = [](const std::string& doc) {
    try {
      security::parse_decision_key(doc);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string k32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";  // 32 zero bytes
  EXPECT_NE(error_of("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(
      error_of(R"({"kty":"RSA","alg":"HS256","kid":"a","k":")" + k32 + R"(","pix_stage":"antifraud"})").find("\"kty\""),
      std::string::npos);
  EXPECT_NE(
      error_of(R"({"kty":"oct","alg":"none","kid":"a","k":")" + k32 + R"(","pix_stage":"antifraud"})").find("\"alg\""),
      std::string::npos);
  EXPECT_NE(error_of(R"({"kty":"oct","alg":"HS256","k":")" + k32 + R"(","pix_stage":"antifraud"})").find("\"kid\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"kty":"oct","alg":"HS256","kid":"a","k":")" + k32 + R"("})").find("\"pix_stage\""),
            std::string::npos);
  EXPECT_NE(
      error_of(R"({"kty":"oct","alg":"HS256","kid":"a","k":"c2hvcnQ","pix_stage":"antifraud"})").find("at least 32"),
      std::string::npos);
  EXPECT_EQ(error_of(R"({"kty":"oct","alg":"HS256","kid":"a","k":")" + k32 + R"(","pix_stage":"antifraud"})"),
            "accepted");
  EXPECT_THROW(DecisionVerifier({k, k}, "settlement"), std::runtime_error) << "the same kid twice";
}

TEST(DecisionSignature, KeyFilesLoadAndAMissingOneNamesItsPath) {
  const auto dir = std::filesystem::temp_directory_path() / ("pix-dkey-" + util::random_hex(4));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "antifraud.json").string();
  std::ofstream(path) << security::generate_decision_key_json("antifraud");
  ::chmod(path.c_str(), 0600);
  EXPECT_EQ(security::load_decision_key(path).stage, "antifraud");
  try {
    security::load_decision_key((dir / "absent.json").string());
    ADD_FAILURE() << "a missing key file loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.json"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// ---- the stage boundary ------------------------------------------------------------------------

kafka::ConsumedRecord record_from(const broker::OutboundEvent& e) {
  kafka::ConsumedRecord r;
  r.topic = e.topic;
  r.key = e.key;
  r.value = e.payload;
  r.headers["ce_id"] = e.id;
  for (const auto& h : e.headers) r.headers[h.name] = h.value;
  return r;
}

saga::Output validated_output() {
  broker::OutboundEvent e;
  e.topic = "pix.payment.validated";
  e.key = "tx-1";
  e.id = "p-1:validated";
  e.payload = R"({"status":"validated","paymentId":"p-1","amountCents":100})";
  return {saga::Sink::kKafka, e};
}

TEST(Provenance, WhatOneStageSignsTheNextActsOnAndAForgeryIsPoison) {
  telemetry::Registry metrics;
  auto antifraud = std::make_shared<saga::Provenance>();
  antifraud->sign = antifraud_key();
  const saga::Handler decide = saga::with_provenance(
      antifraud, "antifraud",
      [](const kafka::ConsumedRecord&) {
        saga::HandlerResult r;
        r.outputs.push_back(validated_output());
        return r;
      },
      metrics);
  const auto decided = decide(kafka::ConsumedRecord{}).outputs.at(0).event;

  auto settlement = std::make_shared<saga::Provenance>();
  settlement->verify.emplace(std::vector<DecisionKey>{antifraud_key()}, "antifraud");
  int acted = 0;
  const saga::Handler settle = saga::with_provenance(
      settlement, "settlement",
      [&acted](const kafka::ConsumedRecord&) {
        ++acted;
        return saga::HandlerResult{};
      },
      metrics);

  EXPECT_TRUE(settle(record_from(decided)).poison_reason.empty());
  EXPECT_EQ(acted, 1);

  // What a client posts through POST /kafka: the same JSON, no signature.
  const auto forged = record_from(validated_output().event);
  const auto refused = settle(forged);
  EXPECT_EQ(refused.poison_reason, "provenance: missing: not a decision signed by antifraud; not acted on");
  // A signed decision whose amount was changed on the way.
  auto tampered = record_from(decided);
  tampered.value = R"({"status":"validated","paymentId":"p-1","amountCents":100000})";
  EXPECT_NE(settle(tampered).poison_reason.find("bad_signature"), std::string::npos);
  EXPECT_EQ(acted, 1) << "a refused record never reaches the handler";
  const std::string text = metrics.render();
  EXPECT_NE(text.find(R"(pix_saga_provenance_refused_total{stage="settlement",reason="missing"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(pix_saga_provenance_refused_total{stage="settlement",reason="bad_signature"} 1)"),
            std::string::npos);
}

TEST(Provenance, AStageWithoutKeysIsLeftAsItIs) {
  telemetry::Registry metrics;
  const saga::Handler plain = saga::with_provenance(
      std::make_shared<saga::Provenance>(), "notifier",
      [](const kafka::ConsumedRecord&) {
        saga::HandlerResult r;
        r.outputs.push_back(validated_output());
        return r;
      },
      metrics);
  EXPECT_TRUE(plain(kafka::ConsumedRecord{}).outputs.at(0).event.headers.empty());
}

}  // namespace
}  // namespace pix
