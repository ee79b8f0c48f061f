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

void TopicTrie::Insert(std::string_view pattern, size_t binding) {
  Node* n = &root_;
  if (!pattern.empty()) {
    for (std::string_view w : Words(pattern)) {
      std::unique_ptr<Node>* next;
      if (w == "*") {
        next = &n->star;
      } else if (w == "#") {
        next = &n->hash;
      } else {
        auto it = n->words.find(w);
        if (it == n->words.end()) it = n->words.emplace(std::string(w), nullptr).first;
        next = &it->second;
      }
      if (!*next) *next = std::make_unique<Node>();
      n = next->get();
    }
  }
  n->bindings.push_back(binding);
}

void TopicTrie::MatchFrom(const Node& n, const std::vector<std::string_view>& words, size_t i,
                          std::vector<size_t>& out) {
  if (n.hash) {
    // '#' takes zero or more words.
    for (size_t j = i; j <= words.size(); ++j) MatchFrom(*n.hash, words, j, out);
  }
  if (i == words.size()) {
    out.insert(out.end(), n.bindings.begin(), n.bindings.end());
    return;
  }
  auto it = n.words.find(words[i]);
  if (it != n.words.end()) MatchFrom(*it->second, words, i + 1, out);
  if (n.star) MatchFrom(*n.star, words, i + 1, out);
}

void TopicTrie::Match(std::string_view key, std::vector<size_t>& out) const {
  std::vector<std::string_view> words = key.empty() ? std::vector<std::string_view>{} : Words(key);
  MatchFrom(root_, words, 0, out);
}

void Exchange::Reindex() {
  direct_index.clear();
  topic_index.Clear();
  const size_t n = bindings.size();
  for (size_t i = 0; i < n; ++i) {
    if (type == ExchangeType::kDirect) direct_index.emplace(bindings[i].key, i);
    if (type == ExchangeType::kTopic) topic_index.Insert(bindings[i].key, i);
  }
}

void Exchange::IndexLast() {
  const size_t i = bindings.size() - 1;
  if (type == ExchangeType::kDirect) direct_index.emplace(bindings[i].key, i);
  if (type == ExchangeType::kTopic) topic_index.Insert(bindings[i].key, i);
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
