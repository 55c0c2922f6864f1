#pragma once
/// @file How every RabbitMQ client of the project is told where the broker is and who it is:
/// `--rabbit-url` plus the TLS and password flags, each with a PIX_RABBIT_* variable.

#include <CLI/CLI.hpp>

#include <string>

#include "pix/amqp/url.hpp"

namespace pix::amqp {

/// @brief The flags as given. A password may sit in the URL (development), or come from
/// `--rabbit-password-file` / PIX_RABBIT_PASSWORD, which win over the URL's.
struct ClientFlags {
  std::string url = "amqp://guest:guest@127.0.0.1:5672/";
  std::string password_file;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

/// Registers `--rabbit-url`, `--rabbit-password-file`, `--rabbit-ca`, `--rabbit-cert` and
/// `--rabbit-key` on `app`.
void add_client_flags(CLI::App& app, ClientFlags& flags);

/// The URL with the flags' password and TLS files folded in; `error` names the flag at fault
/// (a malformed URL, TLS files with an `amqp://` URL, an unreadable file).
AmqpUrlParse resolve_url(const ClientFlags& flags);

}  // namespace pix::amqp
