#include "pix/saga/event_line.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "pix/broker/cloud_event.hpp"

namespace pix::saga {
namespace {

std::string transaction_id(const boost::json::value& v) {
  if (!v.is_object()) return {};
  const auto* tx = v.as_object().if_contains("transactionId");
  if (!tx) return {};
  return tx->is_string() ? std::string(tx->as_string()) : boost::json::serialize(*tx);
}

}  // namespace

std::string readable_line(const EventView& e) {
  boost::json::error_code ec;
  const auto v = boost::json::parse(e.value, ec);
  std::string tx = ec ? std::string() : transaction_id(v);
  return broker::rfc3339_utc_ms(e.time_ms) + "  " + e.topic + "  " + e.position + "  id=" + e.id +
         "  tx=" + (tx.empty() ? "-" : tx) + "  " + e.value;
}

std::string json_line(const EventView& e) {
  boost::json::object o;
  o["time"] = broker::rfc3339_utc_ms(e.time_ms);
  o["topic"] = e.topic;
  o["position"] = e.position;
  o["id"] = e.id;
  boost::json::error_code ec;
  auto v = boost::json::parse(e.value, ec);
  o["transactionId"] = ec ? std::string() : transaction_id(v);
  if (ec) {
    o["raw"] = e.value;
  } else {
    o["value"] = std::move(v);
  }
  return boost::json::serialize(o);
}

}  // namespace pix::saga
