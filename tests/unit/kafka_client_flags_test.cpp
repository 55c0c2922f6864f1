#include "pix/kafka/client_flags.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "pix/amqp/client_flags.hpp"

namespace pix {
namespace {

struct TempFile {
  explicit TempFile(const std::string& content) {
    char name[] = "/tmp/pix-flags-XXXXXX";
    const int fd = ::mkstemp(name);
    path = name;
    ::close(fd);
    std::ofstream(path) << content;
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

std::optional<std::map<std::string, std::string>> properties(std::vector<std::string> args, std::string& error) {
  CLI::App app;
  kafka::ClientFlags flags;
  kafka::add_client_flags(app, flags);
  std::vector<const char*> argv{"test"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return kafka::client_properties(flags, error);
}

TEST(KafkaClientFlags, SaslSslBecomesTheLibrdkafkaProperties) {
  TempFile password("s3cret\n");
  TempFile ca("-----BEGIN CERTIFICATE-----\n");
  std::string error;
  auto p = properties({"--kafka-security-protocol", "SASL_SSL", "--kafka-username", "antifraud",
                       "--kafka-password-file", password.path, "--kafka-ca", ca.path},
                      error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->at("security.protocol"), "sasl_ssl");
  EXPECT_EQ(p->at("sasl.mechanisms"), "SCRAM-SHA-512");
  EXPECT_EQ(p->at("sasl.username"), "antifraud");
  EXPECT_EQ(p->at("sasl.password"), "s3cret");  // trailing newline of the file dropped
  EXPECT_EQ(p->at("ssl.ca.location"), ca.path);
}

TEST(KafkaClientFlags, PasswordFromTheEnvironmentWhenNoFile) {
  ::setenv("PIX_KAFKA_PASSWORD", "from-env", 1);
  std::string error;
  auto p = properties({"--kafka-security-protocol", "sasl_plaintext", "--kafka-username", "u"}, error);
  ::unsetenv("PIX_KAFKA_PASSWORD");
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->at("sasl.password"), "from-env");
}

TEST(KafkaClientFlags, RefusesWhatWouldWeakenTheContract) {
  for (const std::string key :
       {"acks", "enable.idempotence", "enable.auto.commit", "isolation.level", "message.timeout.ms",
        "enable.ssl.certificate.verification", "ssl.endpoint.identification.algorithm", "group.id", "bootstrap.servers",
        "ENABLE.IDEMPOTENCE", "sasl.password"}) {
    std::string error;
    EXPECT_FALSE(properties({"--kafka-option", key + "=x"}, error)) << key;
    EXPECT_NE(error.find("refused"), std::string::npos) << error;
    EXPECT_NE(error.find(key), std::string::npos) << error;
  }
  std::string error;
  auto ok = properties({"--kafka-option", "compression.type=lz4"}, error);
  ASSERT_TRUE(ok) << error;
  EXPECT_EQ(ok->at("compression.type"), "lz4");
}

TEST(KafkaClientFlags, InconsistentSettingsSayWhichFlag) {
  TempFile empty("");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  for (const auto& c : std::vector<Case>{
           {{"--kafka-security-protocol", "sasl_ssl"}, "--kafka-username"},
           {{"--kafka-security-protocol", "sasl_ssl", "--kafka-username", "u"}, "--kafka-password-file"},
           {{"--kafka-username", "u"}, "--kafka-security-protocol"},
           {{"--kafka-ca", "/etc/hostname"}, "--kafka-security-protocol ssl"},
           {{"--kafka-security-protocol", "ssl", "--kafka-ca", "/no/such/ca.pem"}, "--kafka-ca: cannot read"},
           {{"--kafka-security-protocol", "ssl", "--kafka-cert", "/etc/hostname"}, "go together"},
           {{"--kafka-security-protocol", "sasl_ssl", "--kafka-username", "u", "--kafka-password-file", empty.path},
            "is empty"},
           {{"--kafka-option", "novalue"}, "key=value"},
       }) {
    std::string error;
    EXPECT_FALSE(properties(c.args, error)) << c.args[0];
    EXPECT_NE(error.find(c.expect), std::string::npos) << error;
  }
}

amqp::AmqpUrlParse rabbit(std::vector<std::string> args) {
  CLI::App app;
  amqp::ClientFlags flags;
  amqp::add_client_flags(app, flags);
  std::vector<const char*> argv{"test"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return amqp::resolve_url(flags);
}

TEST(RabbitClientFlags, AmqpsWithAPasswordFileAndCa) {
  TempFile password("hunter2\n");
  auto r = rabbit({"--rabbit-url", "amqps://notifier@127.0.0.1/", "--rabbit-password-file", password.path,
                   "--rabbit-ca", "/etc/hostname"});
  ASSERT_TRUE(r) << r.error;
  EXPECT_TRUE(r.url->tls);
  EXPECT_EQ(r.url->port, 5671);
  EXPECT_EQ(r.url->user, "notifier");
  EXPECT_EQ(r.url->password, "hunter2");
  EXPECT_EQ(r.url->ca_file, "/etc/hostname");
  EXPECT_EQ(r.url->redacted().find("hunter2"), std::string::npos);
}

TEST(RabbitClientFlags, TlsFilesNeedAmqpsAndMustExist) {
  EXPECT_NE(rabbit({"--rabbit-url", "amqp://u:p@h/", "--rabbit-ca", "/etc/hostname"}).error.find("amqps://"),
            std::string::npos);
  EXPECT_NE(rabbit({"--rabbit-url", "amqps://u:p@h/", "--rabbit-ca", "/no/such"}).error.find("cannot read"),
            std::string::npos);
  EXPECT_NE(rabbit({"--rabbit-url", "amqps://u:p@h/", "--rabbit-key", "/etc/hostname"}).error.find("go together"),
            std::string::npos);
  EXPECT_NE(rabbit({"--rabbit-url", "amqp://u@h/", "--rabbit-password-file", "/no/such"}).error.find("cannot read"),
            std::string::npos);
}

}  // namespace
}  // namespace pix
