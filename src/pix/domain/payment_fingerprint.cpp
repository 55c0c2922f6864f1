#include "pix/domain/payment_fingerprint.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <vector>

#include "pix/util/sha256.hpp"

namespace pix::domain {
namespace {

namespace json = boost::json;

void append_canonical(const json::value& v, std::string& out) {
  if (v.is_object()) {
    const auto& o = v.as_object();
    std::vector<const json::key_value_pair*> members;
    members.reserve(o.size());
    for (const auto& kv : o) members.push_back(&kv);
    std::sort(members.begin(), members.end(), [](const auto* a, const auto* b) { return a->key() < b->key(); });
    out += '{';
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i) out += ',';
      out += json::serialize(json::value(members[i]->key()));
      out += ':';
      append_canonical(members[i]->value(), out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& e : v.as_array()) {
      if (!first) out += ',';
      first = false;
      append_canonical(e, out);
    }
    out += ']';
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

std::string canonical_json(const json::value& v) {
  std::string out;
  append_canonical(v, out);
  return out;
}

std::string payment_fingerprint(const json::value& requested_value) {
  return "v1:" + util::sha256_hex(canonical_json(requested_value)).substr(0, 32);
}

}  // namespace pix::domain
