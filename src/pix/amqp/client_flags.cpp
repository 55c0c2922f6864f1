#include "pix/amqp/client_flags.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pix::amqp {
namespace {

AmqpUrlParse fail(std::string message) {
  AmqpUrlParse r;
  r.error = std::move(message);
  return r;
}

bool readable(const std::string& path) {
  std::ifstream in(path);
  return static_cast<bool>(in);
}

}  // namespace

void add_client_flags(CLI::App& app, ClientFlags& f) {
  app.add_option("--rabbit-url", f.url,
                 "RabbitMQ URL amqp[s]://user[:pass]@host:port/vhost (amqps: TLS; password never logged)")
      ->envname("PIX_RABBIT_URL")
      ->capture_default_str();
  app.add_option("--rabbit-password-file", f.password_file,
                 "file holding the password of the URL's user (or set PIX_RABBIT_PASSWORD)")
      ->envname("PIX_RABBIT_PASSWORD_FILE");
  app.add_option("--rabbit-ca", f.ca_file, "CA certificates (PEM) the broker's certificate must chain to (amqps)")
      ->envname("PIX_RABBIT_CA");
  app.add_option("--rabbit-cert", f.cert_file, "client certificate (PEM) for mutual TLS (amqps)")
      ->envname("PIX_RABBIT_CERT");
  app.add_option("--rabbit-key", f.key_file, "private key (PEM) of --rabbit-cert")->envname("PIX_RABBIT_KEY");
}

AmqpUrlParse resolve_url(const ClientFlags& f) {
  AmqpUrlParse parsed = parse_amqp_url(f.url);
  if (!parsed) return fail("--rabbit-url: " + parsed.error);
  AmqpUrl& url = *parsed.url;
  if (!f.password_file.empty()) {
    std::ifstream in(f.password_file, std::ios::binary);
    if (!in) return fail("--rabbit-password-file: cannot read '" + f.password_file + "'");
    std::ostringstream s;
    s << in.rdbuf();
    std::string password = s.str();
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
    if (password.empty()) return fail("--rabbit-password-file: '" + f.password_file + "' is empty");
    url.password = std::move(password);
  } else if (const char* env = std::getenv("PIX_RABBIT_PASSWORD");  // NOLINT(concurrency-mt-unsafe): at start-up
             env != nullptr && *env != '\0') {
    url.password = env;
  }
  const bool any_tls_file = !f.ca_file.empty() || !f.cert_file.empty() || !f.key_file.empty();
  if (any_tls_file && !url.tls) return fail("--rabbit-ca/--rabbit-cert/--rabbit-key need an amqps:// --rabbit-url");
  if (f.cert_file.empty() != f.key_file.empty()) return fail("--rabbit-cert and --rabbit-key go together");
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--rabbit-ca", f.ca_file},
                                   {"--rabbit-cert", f.cert_file},
                                   {"--rabbit-key", f.key_file}}) {
    if (!path.empty() && !readable(path)) return fail(std::string(flag) + ": cannot read '" + path + "'");
  }
  url.ca_file = f.ca_file;
  url.cert_file = f.cert_file;
  url.key_file = f.key_file;
  return parsed;
}

}  // namespace pix::amqp
