#include "pix/http/problem.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace pix::http {

std::string to_json(const Problem& p, std::string_view instance) {
  boost::json::object o;
  o["type"] = "urn:pix-pubsub:problem:" + p.type;
  o["title"] = p.title;
  o["status"] = p.status;
  if (!p.detail.empty()) o["detail"] = p.detail;
  o["instance"] = instance;
  if (!p.field.empty()) o["field"] = p.field;
  if (!p.allowed.empty()) {
    boost::json::array a;
    for (const auto& s : p.allowed) a.emplace_back(s);
    o["allowed"] = std::move(a);
  }
  if (!p.event_id.empty()) o["eventId"] = p.event_id;
  return boost::json::serialize(o);
}

}  // namespace pix::http
