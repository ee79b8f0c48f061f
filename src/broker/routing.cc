#include <string_view>
#include <vector>

#include "broker/broker.h"

namespace warren::broker {

namespace {

std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

bool Match(const std::vector<std::string_view>& p, size_t pi,
           const std::vector<std::string_view>& k, size_t ki) {
  while (pi < p.size()) {
    if (p[pi] == "#") {
      // '#' matches zero or more words; collapse consecutive '#'.
      while (pi + 1 < p.size() && p[pi + 1] == "#") ++pi;
      if (pi + 1 == p.size()) return true;
      for (size_t skip = ki; skip <= k.size(); ++skip) {
        if (Match(p, pi + 1, k, skip)) return true;
      }
      return false;
    }
    if (ki >= k.size()) return false;
    if (p[pi] != "*" && p[pi] != k[ki]) return false;
    ++pi;
    ++ki;
  }
  return ki == k.size();
}

}  // namespace

bool TopicMatches(std::string_view pattern, std::string_view key) {
  // An empty routing key is zero words; an empty pattern matches only it.
  std::vector<std::string_view> p =
      pattern.empty() ? std::vector<std::string_view>{} : Words(pattern);
  std::vector<std::string_view> k = key.empty() ? std::vector<std::string_view>{} : Words(key);
  return Match(p, 0, k, 0);
}

bool HeadersMatch(const amqp::FieldTable& binding_args, const amqp::FieldTable* headers) {
  std::string mode = "all";
  if (const auto* m = amqp::Find(binding_args, "x-match")) {
    if (const auto* s = m->AsString()) mode = *s;
  }
  const bool all = mode == "all" || mode == "all-with-x";
  const bool with_x = mode == "all-with-x" || mode == "any-with-x";
  bool any_matched = false;
  for (const auto& e : binding_args) {
    if (e.key == "x-match") continue;
    if (!with_x && e.key.rfind("x-", 0) == 0) continue;
    const amqp::FieldValue* h = headers ? amqp::Find(*headers, e.key) : nullptr;
    bool ok = false;
    if (h != nullptr) {
      // A void binding value only asks for the key to be present.
      // Integers compare by value across widths (RabbitMQ compares Erlang terms).
      const auto hi = h->AsInt(), bi = e.value.AsInt();
      ok = std::holds_alternative<amqp::Void>(e.value.v) || (hi && bi ? *hi == *bi : *h == e.value);
    }
    if (all && !ok) return false;
    if (!all && ok) any_matched = true;
  }
  return all ? true : any_matched;
}

}  // namespace warren::broker
