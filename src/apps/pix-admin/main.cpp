// pix-admin: declares the Kafka topics and the RabbitMQ topology, idempotently; reports on and
// verifies the saga's stores; makes decision keys; prints a payment's trace.
#include <cstdio>
#include <variant>

#include "pix/admin/admin_config.hpp"
#include "pix/admin/commands.hpp"

int main(int argc, char** argv) {
  auto parsed = pix::admin::parse_admin_config(argc, argv);
  if (auto* exit = std::get_if<pix::admin::ParseExit>(&parsed)) {
    std::fputs(exit->message.c_str(), exit->code == 0 ? stdout : stderr);
    return exit->code;
  }
  return pix::admin::run(std::get<pix::admin::AdminConfig>(parsed));
}
