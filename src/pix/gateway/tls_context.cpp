#include "pix/gateway/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace pix::gateway {
namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are all of that already.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::chrono::system_clock::time_point certificate_not_after(const std::string& cert_file) {
  std::FILE* f = std::fopen(cert_file.c_str(), "r");
  if (f == nullptr) return {};
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return {};
  std::tm tm{};
  const int ok = ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
  X509_free(cert);
  if (ok != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

std::shared_ptr<ssl::context> make_server_tls_context(const TlsConfig& config,
                                                      std::chrono::system_clock::time_point* not_after) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    throw std::runtime_error("TLS: cannot set the cipher list: " + openssl_error());
  }
  if (SSL_CTX_use_certificate_chain_file(native, config.cert_file.c_str()) != 1) {
    throw std::runtime_error("--tls-cert " + config.cert_file + ": " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(native, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("--tls-key " + config.key_file + ": " + openssl_error());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    throw std::runtime_error("--tls-key " + config.key_file + " does not match --tls-cert " + config.cert_file);
  }
  if (!config.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, config.client_ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("--tls-client-ca " + config.client_ca_file + ": " + openssl_error());
    }
    // Offered certificates must verify; clients without one may still come with a bearer token.
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(native, names);
    static const unsigned char kSessionContext[] = "pix-api";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  }
  if (not_after != nullptr) *not_after = certificate_not_after(config.cert_file);
  return ctx;
}

TlsContextSource::TlsContextSource(TlsConfig config) : config_(std::move(config)) {
  if (auto s = stamp()) stamp_ = *s;
  context_ = make_server_tls_context(config_, &not_after_);
}

std::shared_ptr<ssl::context> TlsContextSource::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

std::optional<TlsContextSource::Stamp> TlsContextSource::stamp() const {
  struct stat cert {
  }, key{};
  if (::stat(config_.cert_file.c_str(), &cert) != 0 || ::stat(config_.key_file.c_str(), &key) != 0) return std::nullopt;
  return Stamp{static_cast<long long>(cert.st_mtim.tv_sec) * 1000000000LL + cert.st_mtim.tv_nsec,
               static_cast<long long>(key.st_mtim.tv_sec) * 1000000000LL + key.st_mtim.tv_nsec,
               static_cast<long long>(cert.st_size), static_cast<long long>(key.st_size)};
}

TlsContextSource::Reload TlsContextSource::reload_if_changed(bool force) {
  const auto now_stamp = stamp();
  {
    std::lock_guard lock(mutex_);
    if (!force && now_stamp && *now_stamp == stamp_) return {};
  }
  if (!now_stamp) return {false, "cannot stat " + config_.cert_file + " or " + config_.key_file};
  try {
    std::chrono::system_clock::time_point not_after;
    auto fresh = make_server_tls_context(config_, &not_after);
    std::lock_guard lock(mutex_);
    context_ = std::move(fresh);
    stamp_ = *now_stamp;
    not_after_ = not_after;
    return {true, {}};
  } catch (const std::exception& e) {
    // A certificate and key written one after the other may be read half-way: the next check,
    // with both in place, takes them. Until then the stamp stays old, so it is retried.
    return {false, e.what()};
  }
}

double TlsContextSource::seconds_until_expiry() const {
  std::lock_guard lock(mutex_);
  return std::chrono::duration<double>(not_after_ - std::chrono::system_clock::now()).count();
}

}  // namespace pix::gateway
