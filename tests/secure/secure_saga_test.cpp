// The whole saga in the secure profile: every process its own principal over TLS (Kafka
// SASL_SSL with ACLs, RabbitMQ AMQPS with per-user permissions), the gateway on HTTPS with
// bearer tokens. The same assertions as the plaintext end-to-end test.
#include <gtest/gtest.h>

#include "support/saga_world.hpp"
#include "support/secure_env.hpp"

namespace pix::test {
namespace {

TEST(SecureSaga, PaymentsFlowToNotificationAndRejectionsMoveNoMoney) {
  auto secure = SecureEnv::from_environment();
  if (!secure) GTEST_SKIP() << "PIX_SECURE_STATE is not set (scripts/local/test.sh starts the secure brokers)";
  SagaWorld world(std::move(secure));
  expect_payments_flow_and_rejections_move_no_money(world);
}

}  // namespace
}  // namespace pix::test
