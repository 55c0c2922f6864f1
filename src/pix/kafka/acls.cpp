#include "pix/kafka/acls.hpp"

#include <librdkafka/rdkafka.h>

#include <stdexcept>

#include "pix/domain/topics.hpp"
#include "pix/kafka/handles.hpp"

namespace pix::kafka {
namespace {

using Op = AclRule::Operation;
using Res = AclRule::Resource;

void add(std::vector<AclRule>& out, const std::string& who, Op op, Res res, std::string name, bool prefixed = false) {
  out.push_back(AclRule{"User:" + who, op, res, std::move(name), prefixed});
}

}  // namespace

std::string AclRule::describe() const {
  return principal + (operation == Op::kRead ? " READ " : " WRITE ") + (resource == Res::kTopic ? "topic " : "group ") +
         name + (prefixed ? "*" : "");
}

std::vector<AclRule> pix_acls(std::string_view topic_prefix, std::string_view dead_letter_topic, const Principals& p) {
  const std::string prefix(topic_prefix);
  auto t = [&](domain::Topic topic) { return prefix + std::string(domain::topic_name(topic)); };
  const std::string dlq = prefix + std::string(dead_letter_topic);
  using T = domain::Topic;
  std::vector<AclRule> out;
  for (const auto topic :
       {T::kPaymentRequested, T::kPaymentValidated, T::kPaymentSettled, T::kNotificationSent, T::kAuditLog}) {
    add(out, p.gateway, Op::kWrite, Res::kTopic, t(topic));
  }
  struct Stage {
    const std::string& who;
    std::vector<T> reads;
    std::vector<T> writes;
  };
  for (const Stage& s :
       // Anti-fraud reads its own output back: the verdicts a partition's next owner restores.
       {Stage{p.antifraud, {T::kPaymentRequested, T::kPaymentValidated}, {T::kPaymentValidated}},
        Stage{p.settlement, {T::kPaymentValidated}, {T::kPaymentSettled}}, Stage{p.notifier, {T::kPaymentSettled}, {}},
        Stage{p.auditor,
              {T::kPaymentRequested, T::kPaymentValidated, T::kPaymentSettled, T::kNotificationSent},
              {T::kAuditLog}}}) {
    for (const auto topic : s.reads) add(out, s.who, Op::kRead, Res::kTopic, t(topic));
    for (const auto topic : s.writes) add(out, s.who, Op::kWrite, Res::kTopic, t(topic));
    add(out, s.who, Op::kWrite, Res::kTopic, dlq);
    add(out, s.who, Op::kRead, Res::kGroup, s.who, true);
  }
  for (const auto name : domain::kTopicNames) add(out, p.tail, Op::kRead, Res::kTopic, prefix + std::string(name));
  add(out, p.tail, Op::kRead, Res::kGroup, "pix-", true);
  return out;
}

std::vector<AclOutcome> create_acls(const std::string& bootstrap, const std::vector<AclRule>& rules,
                                    std::chrono::milliseconds timeout,
                                    const std::map<std::string, std::string>& extra) {
  const auto rk = detail::new_admin_client(bootstrap, extra);
  char err[512];
  std::vector<detail::AclBindingHandle> bindings;
  for (const auto& r : rules) {
    detail::AclBindingHandle b(rd_kafka_AclBinding_new(
        r.resource == Res::kTopic ? RD_KAFKA_RESOURCE_TOPIC : RD_KAFKA_RESOURCE_GROUP, r.name.c_str(),
        r.prefixed ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED : RD_KAFKA_RESOURCE_PATTERN_LITERAL, r.principal.c_str(), "*",
        r.operation == Op::kRead ? RD_KAFKA_ACL_OPERATION_READ : RD_KAFKA_ACL_OPERATION_WRITE,
        RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, err, sizeof err));
    if (!b) throw std::invalid_argument("ACL " + r.describe() + ": " + err);
    bindings.push_back(std::move(b));
  }
  const int timeout_ms = static_cast<int>(timeout.count());
  const auto ev =
      detail::admin_request(rk.get(), RD_KAFKA_ADMIN_OP_CREATEACLS, timeout_ms, RD_KAFKA_EVENT_CREATEACLS_RESULT,
                            "CreateAcls", bootstrap, [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                              rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, err, sizeof err);
                              auto raw = detail::raw(bindings);
                              rd_kafka_CreateAcls(rk.get(), raw.data(), raw.size(), options, queue);
                            });
  std::size_t n = 0;
  const rd_kafka_acl_result_t** results =
      rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev.get()), &n);
  std::vector<AclOutcome> out;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    AclOutcome o{rules[i], true, "declared"};
    const rd_kafka_error_t* e = i < n ? rd_kafka_acl_result_error(results[i]) : nullptr;
    if (i >= n) {
      o.ok = false;
      o.status = "no result from the broker";
    } else if (e != nullptr) {
      o.ok = false;
      o.status = rd_kafka_error_string(e);
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace pix::kafka
