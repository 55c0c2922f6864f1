#include "support/test_pki.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace pix::test {
namespace {

void run(const std::string& cmd) {
  if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

const char* kEcKey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

}  // namespace

TestPki::TestPki() {
  char tmpl[] = "/tmp/pix-pki-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir = tmpl;
  for (const std::string name : {"main", "other"}) {
    run("openssl req -x509 " + std::string(kEcKey) + " -keyout " + dir + "/" + name + "-ca.key -out " + dir + "/" +
        name + "-ca.crt -days 2 -subj /CN=pix-test-" + name +
        "-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign");
  }
  ca = dir + "/main-ca.crt";
  other_ca = dir + "/other-ca.crt";
  server = issue("main", "server", true);
  client = issue("main", "partner-bank", false);
  stranger = issue("other", "stranger", false);
}

TestPki::~TestPki() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

std::string TestPki::issue(const std::string& signer, const std::string& name, bool for_server,
                           const std::string& sans) {
  static int serial = 0;
  const std::string prefix = dir + "/" + name + "-" + signer + "-" + std::to_string(++serial);
  const std::string ext = prefix + ".ext";
  std::ofstream(ext) << (for_server ? "subjectAltName=" + sans + "\nextendedKeyUsage=serverAuth\n"
                                    : std::string("extendedKeyUsage=clientAuth\n"));
  run("openssl req " + std::string(kEcKey) + " -keyout " + prefix + ".key -out " + prefix + ".csr -subj /CN=" + name);
  run("openssl x509 -req -in " + prefix + ".csr -CA " + dir + "/" + signer + "-ca.crt -CAkey " + dir + "/" + signer +
      "-ca.key -CAcreateserial -out " + prefix + ".crt -days 2 -extfile " + ext);
  return prefix;
}

}  // namespace pix::test
