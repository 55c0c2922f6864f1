#pragma once
// Throwaway certificates for TLS tests, made with the openssl command line: a CA, a server
// certificate for 127.0.0.1/localhost, a client certificate, and a second, unrelated CA.

#include <string>

namespace pix::test {

/// @brief The files of one test PKI, all under `dir` (removed by the destructor).
class TestPki {
 public:
  TestPki();
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  /// A leaf certificate signed by the CA `ca` ("main" or "other"): for the server (SANs `sans`,
  /// 127.0.0.1 and localhost by default) or for a client (CN `name`). Returns the path prefix
  /// (.crt/.key).
  std::string issue(const std::string& ca, const std::string& name, bool server,
                    const std::string& sans = "IP:127.0.0.1,DNS:localhost");

  std::string dir;
  std::string ca;        ///< main CA certificate
  std::string other_ca;  ///< a CA nobody trusts
  std::string server;    ///< prefix of the server certificate signed by the main CA
  std::string client;    ///< prefix of client certificate CN=partner-bank, main CA
  std::string stranger;  ///< prefix of client certificate CN=stranger, other CA
};

}  // namespace pix::test
