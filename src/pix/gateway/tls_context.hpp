#pragma once
/// @file The gateway's server-side TLS: an OpenSSL context built from certificate files, and
/// swapped for a new one when the files change, without a restart.

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "pix/gateway/config.hpp"

namespace pix::gateway {

/// @brief Owns the current server TLS context: TLS 1.2 and 1.3 only, forward-secret AEAD
/// ciphers (Mozilla's "intermediate" list for 1.2), client certificates asked for and verified
/// when a client CA is configured.
///
/// Connections take `current()` when accepted and keep it (a shared_ptr) for their life, so a
/// reload changes what new connections get and never disturbs open ones. A reload that fails
/// (missing file, key not matching the certificate) keeps the context in use and says why.
class TlsContextSource {
 public:
  /// Builds the first context; throws std::runtime_error naming the file when it cannot.
  explicit TlsContextSource(TlsConfig config);

  std::shared_ptr<boost::asio::ssl::context> current() const;

  /// @brief What a reload did.
  struct Reload {
    bool changed = false;  ///< a new context is in use
    std::string error;     ///< why the files were not taken (the old context stays)
  };
  /// Rebuilds the context if the files' modification times or sizes changed, or always with
  /// `force` (SIGHUP). Cheap when nothing changed: two stat() calls.
  Reload reload_if_changed(bool force = false);

  /// Seconds until the serving certificate expires (negative once expired).
  double seconds_until_expiry() const;

 private:
  struct Stamp {
    long long cert_mtime = 0, key_mtime = 0, cert_size = 0, key_size = 0;
    bool operator==(const Stamp&) const = default;
  };
  std::optional<Stamp> stamp() const;

  const TlsConfig config_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  Stamp stamp_;
  std::chrono::system_clock::time_point not_after_;
};

/// Builds a server context from the files; throws std::runtime_error naming the file at fault.
/// `not_after` receives the certificate's expiry.
std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const TlsConfig& config,
                                                                   std::chrono::system_clock::time_point* not_after);

}  // namespace pix::gateway
