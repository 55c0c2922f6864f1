#include "pix/gateway/publish_request.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>

#include "pix/domain/event_validation.hpp"
#include "pix/util/text.hpp"

namespace pix::gateway {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

http::Problem invalid_field(const std::string& field, const std::string& detail) {
  http::Problem p;
  p.status = 422;
  p.type = "invalid-field";
  p.title = "A field is missing or has the wrong type";
  p.detail = field + " " + detail;
  p.field = field;
  return p;
}

}  // namespace

bool is_json_media_type(std::string_view content_type) noexcept {
  std::string_view essence = util::trim_blanks(content_type.substr(0, content_type.find(';')));
  if (iequals(essence, "application/json")) return true;
  constexpr std::string_view kPrefix = "application/";
  constexpr std::string_view kSuffix = "+json";
  return essence.size() > kPrefix.size() + kSuffix.size() && iequals(essence.substr(0, kPrefix.size()), kPrefix) &&
         iequals(essence.substr(essence.size() - kSuffix.size()), kSuffix);
}

std::variant<PublishCommand, http::Problem> parse_publish_request(std::string_view content_type,
                                                                  std::string_view body) {
  if (!is_json_media_type(content_type)) {
    http::Problem p;
    p.status = 415;
    p.type = "unsupported-media-type";
    p.title = "The body must be JSON";
    p.detail = content_type.empty() ? "Content-Type is missing; send Content-Type: application/json"
                                    : "Content-Type '" + std::string(content_type) +
                                          "' is not JSON; send Content-Type: application/json";
    p.field = "Content-Type";
    return p;
  }

  // The parsed tree lives only for this call: a monotonic arena makes it one or two allocations.
  unsigned char arena[4096];
  boost::json::monotonic_resource mr(arena, sizeof(arena));
  boost::json::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec, &mr);
  if (ec) {
    http::Problem p;
    p.status = 400;
    p.type = "malformed-json";
    p.title = "The body is not valid JSON";
    p.detail = ec.message();
    return p;
  }
  if (!doc.is_object()) return invalid_field("(body)", "must be a JSON object with 'topic' and 'value'");
  const auto& root = doc.get_object();

  PublishCommand cmd;
  if (const auto* t = root.if_contains("topic"); t != nullptr && !t->is_null()) {
    if (!t->is_string()) return invalid_field("topic", "must be a string");
    const auto& name = t->get_string();
    const auto topic = domain::parse_topic(std::string_view(name.data(), name.size()));
    if (!topic) {
      http::Problem p;
      p.status = 422;
      p.type = "unknown-topic";
      p.title = "The topic is not one of the PIX topics";
      p.detail = "topic '" + std::string(name) + "' is not allowed";
      p.field = "topic";
      for (auto n : domain::kTopicNames) p.allowed.emplace_back(n);
      return p;
    }
    cmd.topic = *topic;
  }

  const auto* v = root.if_contains("value");
  if (v == nullptr || v->is_null()) return invalid_field("value", "is required");
  if (!v->is_object()) return invalid_field("value", "must be a JSON object");
  const auto& value = v->get_object();
  if (auto err = domain::validate_event(cmd.topic, value)) return invalid_field(err->field, err->reason);

  const auto& id = value.at("transactionId");
  cmd.transaction_id = id.is_string() ? std::string(id.get_string()) : boost::json::serialize(id);
  cmd.record_key =
      cmd.topic == domain::Topic::kPaymentRequested ? std::string(value.at("payer").get_string()) : cmd.transaction_id;
  cmd.payload = boost::json::serialize(value);
  return cmd;
}

}  // namespace pix::gateway
