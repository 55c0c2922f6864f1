#pragma once
/// @file Least-privilege Kafka ACLs for the project's principals, declared idempotently.

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pix::kafka {

/// @brief One ALLOW rule: `principal` may `operation` the resource `name` (a literal name, or
/// every name starting with it when `prefixed`), from any host.
struct AclRule {
  enum class Resource { kTopic, kGroup };
  enum class Operation { kRead, kWrite };
  std::string principal;  ///< e.g. User:antifraud
  Operation operation = Operation::kRead;
  Resource resource = Resource::kTopic;
  std::string name;
  bool prefixed = false;

  /// e.g. "User:antifraud READ topic pix.payment.requested" (prefixed names end in `*`).
  std::string describe() const;
};

/// @brief The Kafka usernames of the components (SCRAM principals), as the secure profile,
/// compose and Kubernetes create them.
struct Principals {
  std::string gateway = "api-kafka";
  std::string antifraud = "antifraud";
  std::string settlement = "settlement";
  std::string notifier = "notifier";
  std::string auditor = "auditor";
  std::string tail = "pix-tail";
};

/// The rules the saga needs and nothing more, for topics named `<topic_prefix><topic>`:
/// the gateway writes the five PIX topics; each stage reads its input (with consumer groups
/// whose names start with the stage's name) and writes its output and the dead-letter topic; the auditor
/// reads the four topics it audits and writes pix.audit.log; pix-tail reads every PIX topic
/// (groups starting with `pix-`). Write implies Describe and, since Kafka 2.8 (KIP-679),
/// IdempotentWrite; Read implies Describe.
std::vector<AclRule> pix_acls(std::string_view topic_prefix, std::string_view dead_letter_topic,
                              const Principals& principals = {});

/// @brief Outcome of one rule: declared (new or already there), or why not.
struct AclOutcome {
  AclRule rule;
  bool ok = false;
  std::string status;
};

/// Declares `rules` (adding an existing ACL is a no-op). Throws std::runtime_error when the
/// cluster cannot be reached or refuses the request as a whole (e.g. no authorizer configured,
/// or the caller is not allowed to alter ACLs).
std::vector<AclOutcome> create_acls(const std::string& bootstrap, const std::vector<AclRule>& rules,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                    const std::map<std::string, std::string>& extra = {});

}  // namespace pix::kafka
