#include "broker/consumer_set.h"

#include <algorithm>

#include "broker/broker.h"

namespace warren::broker {

void ConsumerSet::Add(Consumer* c, int64_t priority, bool exclusive) {
  auto it = std::find_if(groups_.begin(), groups_.end(),
                         [&](const Group& g) { return g.priority <= priority; });
  if (it == groups_.end() || it->priority != priority) {
    it = groups_.insert(it, Group{priority, {}, 0});
  }
  it->members.push_back(c);
  ++size_;
  if (exclusive) exclusive_ = true;
  if (single_active_ && active_ == nullptr) active_ = c;
}

bool ConsumerSet::Remove(Consumer* c) {
  for (auto g = groups_.begin(); g != groups_.end(); ++g) {
    auto m = std::find(g->members.begin(), g->members.end(), c);
    if (m == g->members.end()) continue;
    const size_t idx = static_cast<size_t>(m - g->members.begin());
    g->members.erase(m);
    // Keep the cursor on the consumer that was next.
    if (idx < g->next) --g->next;
    if (g->next >= g->members.size()) g->next = 0;
    if (g->members.empty()) groups_.erase(g);
    --size_;
    if (size_ == 0) exclusive_ = false;
    if (active_ == c) active_ = groups_.empty() ? nullptr : groups_.front().members.front();
    return true;
  }
  return false;
}

Consumer* ConsumerSet::Next() {
  if (single_active_) return active_ != nullptr && active_->CanAccept() ? active_ : nullptr;
  for (Group& g : groups_) {
    const size_t n = g.members.size();
    for (size_t i = 0; i < n; ++i) {
      size_t idx = g.next + i;
      if (idx >= n) idx -= n;
      Consumer* c = g.members[idx];
      if (c->CanAccept()) {
        g.next = idx + 1 == n ? 0 : idx + 1;
        return c;
      }
    }
  }
  return nullptr;
}

std::vector<Consumer*> ConsumerSet::TakeAll() {
  std::vector<Consumer*> all;
  all.reserve(size_);
  for (Group& g : groups_) all.insert(all.end(), g.members.begin(), g.members.end());
  groups_.clear();
  size_ = 0;
  exclusive_ = false;
  active_ = nullptr;
  return all;
}

std::optional<std::string> ConsumerPriority(const amqp::FieldTable& args,
                                            const std::string& queue_text, int64_t& priority) {
  priority = 0;
  const amqp::FieldValue* v = amqp::Find(args, "x-priority");
  if (v == nullptr) return std::nullopt;
  if (auto i = v->AsInt()) {
    priority = *i;
    return std::nullopt;
  }
  return "invalid arg 'x-priority' for " + queue_text + ": \"expected integer, got " +
         std::string(v->TypeName()) + "\"";
}

std::optional<std::string> SingleActiveConsumerArg(const amqp::FieldTable& args,
                                                   const std::string& queue_text, bool& on) {
  on = false;
  const amqp::FieldValue* v = amqp::Find(args, "x-single-active-consumer");
  if (v == nullptr) return std::nullopt;
  if (const bool* b = v->get_if<bool>()) {
    on = *b;
    return std::nullopt;
  }
  return "invalid arg 'x-single-active-consumer' for " + queue_text + ": {unacceptable_type," +
         std::string(v->TypeName()) + "}";
}

}  // namespace warren::broker
