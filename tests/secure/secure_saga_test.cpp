// The whole saga in the secure profile: every process its own principal over TLS (Kafka
// SASL_SSL with ACLs, RabbitMQ AMQPS with per-user permissions), the gateway on HTTPS with
// bearer tokens. The same assertions as the plaintext end-to-end test.
#include <gtest/gtest.h>

#include "pix/audit/audit_store.hpp"
#include "support/saga_world.hpp"
#include "support/secure_env.hpp"

namespace pix::test {
namespace {

TEST(SecureSaga, PaymentsFlowToNotificationAndRejectionsMoveNoMoney) {
  auto secure = SecureEnv::from_environment();
  if (!secure) GTEST_SKIP() << "PIX_SECURE_STATE is not set (scripts/local/test.sh starts the secure brokers)";
  SagaWorld world(std::move(secure));
  expect_payments_flow_and_rejections_move_no_money(world);
  // The audit chain says who asked for each payment: the token's subject, verified at the edge.
  audit::AuditStore store(world.audit_db());
  std::size_t requested_by_principal = 0;
  for (const auto& e : store.entries(1, 10000)) {
    if (e.source == "saga-world@kafka:" + world.prefix() + "pix.payment.requested") ++requested_by_principal;
  }
  EXPECT_EQ(requested_by_principal, 36u);  // every payment the scenario sent through the gateway
}

}  // namespace
}  // namespace pix::test
