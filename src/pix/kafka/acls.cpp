#include "pix/kafka/acls.hpp"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <stdexcept>

#include "pix/domain/topics.hpp"

namespace pix::kafka {
namespace {

using Op = AclRule::Operation;
using Res = AclRule::Resource;

struct Holder {
  rd_kafka_t* rk = nullptr;
  rd_kafka_queue_t* queue = nullptr;
  ~Holder() {
    if (queue) rd_kafka_queue_destroy(queue);
    if (rk) rd_kafka_destroy(rk);
  }
};

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
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument("kafka option " + k + ": " + err);
    }
  };
  set("bootstrap.servers", bootstrap);
  set("client.id", "pix-admin");
  for (const auto& [k, v] : extra) set(k, v);
  Holder h;
  h.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (h.rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create Kafka client: ") + err);
  }

  std::vector<rd_kafka_AclBinding_t*> bindings;
  for (const auto& r : rules) {
    rd_kafka_AclBinding_t* b = rd_kafka_AclBinding_new(
        r.resource == Res::kTopic ? RD_KAFKA_RESOURCE_TOPIC : RD_KAFKA_RESOURCE_GROUP, r.name.c_str(),
        r.prefixed ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED : RD_KAFKA_RESOURCE_PATTERN_LITERAL, r.principal.c_str(), "*",
        r.operation == Op::kRead ? RD_KAFKA_ACL_OPERATION_READ : RD_KAFKA_ACL_OPERATION_WRITE,
        RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, err, sizeof err);
    if (b == nullptr) {
      for (auto* x : bindings) rd_kafka_AclBinding_destroy(x);
      throw std::invalid_argument("ACL " + r.describe() + ": " + err);
    }
    bindings.push_back(b);
  }
  h.queue = rd_kafka_queue_new(h.rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(h.rk, RD_KAFKA_ADMIN_OP_CREATEACLS);
  rd_kafka_AdminOptions_set_request_timeout(opts, static_cast<int>(timeout.count()), err, sizeof err);
  rd_kafka_CreateAcls(h.rk, bindings.data(), bindings.size(), opts, h.queue);
  rd_kafka_AdminOptions_destroy(opts);
  for (auto* b : bindings) rd_kafka_AclBinding_destroy(b);

  rd_kafka_event_t* ev = rd_kafka_queue_poll(h.queue, static_cast<int>(timeout.count()) + 1000);
  if (ev == nullptr) throw std::runtime_error("Kafka CreateAcls timed out (is " + bootstrap + " reachable?)");
  if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_CREATEACLS_RESULT || rd_kafka_event_error(ev)) {
    const char* msg = rd_kafka_event_error_string(ev);
    std::string why = msg ? msg : "unexpected event";
    rd_kafka_event_destroy(ev);
    throw std::runtime_error("Kafka CreateAcls failed: " + why);
  }
  std::size_t n = 0;
  const rd_kafka_acl_result_t** results = rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &n);
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
  rd_kafka_event_destroy(ev);
  return out;
}

}  // namespace pix::kafka
