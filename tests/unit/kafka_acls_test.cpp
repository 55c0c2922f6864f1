#include "pix/kafka/acls.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace pix::kafka {
namespace {

using Op = AclRule::Operation;
using Res = AclRule::Resource;

bool allows(const std::vector<AclRule>& rules, const std::string& who, Op op, Res res, const std::string& name) {
  return std::any_of(rules.begin(), rules.end(), [&](const AclRule& r) {
    return r.principal == "User:" + who && r.operation == op && r.resource == res &&
           (r.prefixed ? name.rfind(r.name, 0) == 0 : name == r.name);
  });
}

TEST(KafkaAcls, EachComponentGetsItsJobAndNothingElse) {
  const auto rules = pix_acls("", "pix.dlq");
  // The gateway writes the five topics and reads none.
  for (const char* t : {"pix.payment.requested", "pix.payment.validated", "pix.payment.settled",
                        "pix.notification.sent", "pix.audit.log"}) {
    EXPECT_TRUE(allows(rules, "api-kafka", Op::kWrite, Res::kTopic, t)) << t;
    EXPECT_FALSE(allows(rules, "api-kafka", Op::kRead, Res::kTopic, t)) << t;
  }
  EXPECT_FALSE(allows(rules, "api-kafka", Op::kRead, Res::kGroup, "antifraud"));
  // Anti-fraud: reads requests, writes validations and dead letters, and reads its own
  // validations back (a partition's next owner restores the verdicts), nothing else.
  EXPECT_TRUE(allows(rules, "antifraud", Op::kRead, Res::kTopic, "pix.payment.requested"));
  EXPECT_TRUE(allows(rules, "antifraud", Op::kRead, Res::kGroup, "antifraud"));
  EXPECT_TRUE(allows(rules, "antifraud", Op::kWrite, Res::kTopic, "pix.payment.validated"));
  EXPECT_TRUE(allows(rules, "antifraud", Op::kWrite, Res::kTopic, "pix.dlq"));
  EXPECT_FALSE(allows(rules, "antifraud", Op::kWrite, Res::kTopic, "pix.payment.settled"));
  EXPECT_TRUE(allows(rules, "antifraud", Op::kRead, Res::kTopic, "pix.payment.validated"));
  EXPECT_FALSE(allows(rules, "antifraud", Op::kRead, Res::kTopic, "pix.payment.settled"));
  EXPECT_FALSE(allows(rules, "antifraud", Op::kRead, Res::kGroup, "settlement"));
  // Settlement cannot forge a validation: only anti-fraud writes pix.payment.validated.
  EXPECT_FALSE(allows(rules, "settlement", Op::kWrite, Res::kTopic, "pix.payment.validated"));
  EXPECT_TRUE(allows(rules, "settlement", Op::kWrite, Res::kTopic, "pix.payment.settled"));
  EXPECT_FALSE(allows(rules, "notifier", Op::kWrite, Res::kTopic, "pix.payment.settled"));
  EXPECT_TRUE(allows(rules, "auditor", Op::kRead, Res::kTopic, "pix.notification.sent"));
  EXPECT_TRUE(allows(rules, "auditor", Op::kWrite, Res::kTopic, "pix.audit.log"));
  EXPECT_FALSE(allows(rules, "auditor", Op::kRead, Res::kTopic, "pix.audit.log"));
  EXPECT_FALSE(allows(rules, "pix-tail", Op::kWrite, Res::kTopic, "pix.payment.requested"));
  EXPECT_TRUE(allows(rules, "pix-tail", Op::kRead, Res::kGroup, "pix-group"));  // the seed's consumer group
}

TEST(KafkaAcls, TopicsCarryThePrefixAndAreNamedLiterally) {
  const auto rules = pix_acls("staging.", "pix.dlq");
  for (const auto& r : rules) {
    if (r.resource != Res::kTopic) continue;
    EXPECT_FALSE(r.prefixed) << r.describe();
    EXPECT_EQ(r.name.rfind("staging.pix.", 0), 0u) << r.describe();
  }
  EXPECT_TRUE(allows(rules, "antifraud", Op::kRead, Res::kTopic, "staging.pix.payment.requested"));
  EXPECT_FALSE(allows(rules, "antifraud", Op::kRead, Res::kTopic, "pix.payment.requested"));
}

}  // namespace
}  // namespace pix::kafka
