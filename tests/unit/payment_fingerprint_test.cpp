#include "pix/domain/payment_fingerprint.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace pix::domain {
namespace {

namespace json = boost::json;

TEST(PaymentFingerprint, OrderAndSpacingDoNotMatterContentDoes) {
  const auto a =
      json::parse(R"({"transactionId":"1","amount":"10.00","payer":"alice","meta":{"b":1,"a":[2,{"y":1,"x":2}]}})");
  const auto b = json::parse(
      R"({ "meta": {"a": [2, {"x":2, "y":1}], "b": 1}, "payer":"alice", "amount":"10.00", "transactionId":"1" })");
  EXPECT_EQ(canonical_json(a), canonical_json(b));
  EXPECT_EQ(payment_fingerprint(a), payment_fingerprint(b));
  EXPECT_EQ(canonical_json(a),
            R"({"amount":"10.00","meta":{"a":[2,{"x":2,"y":1}],"b":1},"payer":"alice","transactionId":"1"})");
  const auto other =
      json::parse(R"({"transactionId":"1","amount":"10.01","payer":"alice","meta":{"b":1,"a":[2,{"y":1,"x":2}]}})");
  EXPECT_NE(payment_fingerprint(a), payment_fingerprint(other));
  // Array order is content.
  EXPECT_NE(payment_fingerprint(json::parse("[1,2]")), payment_fingerprint(json::parse("[2,1]")));
  EXPECT_EQ(payment_fingerprint(a).rfind("v1:", 0), 0u);
  EXPECT_EQ(payment_fingerprint(a).size(), 35u);
}

}  // namespace
}  // namespace pix::domain
