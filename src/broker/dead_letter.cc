// Dead-lettering (docs/queues.md), as RabbitMQ 3.10 does it:
// - the copy gets an `x-death` array entry {count, reason, queue, time, exchange, routing-keys,
//   original-expiration}; an entry with the same queue and reason is folded (count + 1) and
//   moved to the front; the first death also sets x-first-death-{reason,queue,exchange}
//   (3.10 sends no x-last-death-*: those came in 3.13);
// - the `expiration` property is removed (kept as original-expiration);
// - routed with x-dead-letter-routing-key (and the CC header dropped) or else with the original
//   routing key and CC keys (BCC was already removed at publish);
// - a target queue in a cycle of automatic deaths (no `rejected` between) is skipped.

#include <algorithm>

#include "amqp/codec/methods.h"
#include "base/logging.h"
#include "broker/broker.h"

namespace warren::broker {

namespace {

auto Log() {
  static auto log = GetLogger("broker");
  return log;
}

std::string_view ReasonName(DeathReason r) {
  switch (r) {
    case DeathReason::kRejected:
      return "rejected";
    case DeathReason::kExpired:
      return "expired";
    case DeathReason::kMaxLen:
      return "maxlen";
  }
  return "rejected";
}

const std::string* TableString(const amqp::FieldTable& t, std::string_view key) {
  const amqp::FieldValue* v = amqp::Find(t, key);
  return v ? v->AsString() : nullptr;
}

void SetHeader(amqp::FieldTable& headers, const std::string& key, amqp::FieldValue value) {
  for (auto& e : headers) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  headers.push_back(amqp::FieldEntry{key, std::move(value)});
}

// RabbitMQ's is_cycle: `queue` died before, and every death from the newest back to that one
// was automatic (not rejected, and nothing a client could have put there).
bool IsCycle(const std::string& queue, const amqp::FieldArray& deaths) {
  for (const amqp::FieldValue& d : deaths) {
    const auto* t = d.get_if<amqp::FieldTable>();
    if (t == nullptr) return false;
    const std::string* reason = TableString(*t, "reason");
    if (reason != nullptr && *reason == "rejected") return false;
    const std::string* q = TableString(*t, "queue");
    if (q != nullptr && *q == queue) return true;
  }
  return false;
}

}  // namespace

void Vhost::DeadLetter(const Queue& q, const Message& m, DeathReason reason) {
  const std::string& dlx = *q.settings().dead_letter_exchange;
  const Exchange* ex = FindExchange(dlx);
  if (ex == nullptr) {
    Log()->debug("queue '{}': dead-letter exchange '{}' does not exist; message dropped", q.name(),
                 dlx);
    return;
  }
  auto decoded = amqp::DecodeProperties(m.properties());
  if (!decoded) return;
  amqp::BasicProperties props = std::move(decoded).value();
  amqp::FieldTable headers = props.headers ? std::move(*props.headers) : amqp::FieldTable{};

  // routing-keys of the death: the key and the CC keys the message was published with.
  amqp::FieldArray keys;
  keys.emplace_back(m.routing_key);
  if (const auto* cc = amqp::Find(headers, "CC")) {
    if (const auto* arr = cc->get_if<amqp::FieldArray>()) {
      for (const auto& k : *arr) {
        if (k.AsString()) keys.push_back(k);
      }
    }
  }
  std::vector<std::string> route_keys;
  if (const auto& rk = q.settings().dead_letter_routing_key) {
    route_keys.push_back(*rk);
    std::erase_if(headers, [](const amqp::FieldEntry& e) { return e.key == "CC"; });
  } else {
    for (const auto& k : keys) route_keys.push_back(*k.AsString());
  }

  const std::string reason_name(ReasonName(reason));
  amqp::FieldTable death;
  death.push_back({"count", int64_t{1}});
  death.push_back({"reason", reason_name});
  death.push_back({"queue", q.name()});
  death.push_back({"time", amqp::Timestamp{Now() / 1000}});
  death.push_back({"exchange", m.exchange});
  death.push_back({"routing-keys", keys});
  if (props.expiration) death.push_back({"original-expiration", *props.expiration});
  props.expiration.reset();

  amqp::FieldArray deaths;
  const amqp::FieldValue* old = amqp::Find(headers, "x-death");
  const auto* old_deaths = old ? old->get_if<amqp::FieldArray>() : nullptr;
  if (old_deaths == nullptr) {
    deaths.push_back(std::move(death));
    SetHeader(headers, "x-first-death-reason", reason_name);
    SetHeader(headers, "x-first-death-queue", q.name());
    SetHeader(headers, "x-first-death-exchange", m.exchange);
  } else {
    // Fold into the entry of the same queue and reason (count + 1), which moves to the front.
    amqp::FieldTable front = std::move(death);
    for (const amqp::FieldValue& d : *old_deaths) {
      const auto* t = d.get_if<amqp::FieldTable>();
      const std::string* dq = t ? TableString(*t, "queue") : nullptr;
      const std::string* dr = t ? TableString(*t, "reason") : nullptr;
      if (dq && dr && *dq == q.name() && *dr == reason_name) {
        front = *t;
        for (auto& e : front) {
          if (e.key == "count") e.value = int64_t{e.value.AsInt().value_or(0) + 1};
        }
        continue;
      }
      deaths.push_back(d);
    }
    std::stable_sort(front.begin(), front.end(),
                     [](const auto& a, const auto& b) { return a.key < b.key; });
    deaths.insert(deaths.begin(), amqp::FieldValue(std::move(front)));
  }
  SetHeader(headers, "x-death", deaths);
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.key < b.key; });
  props.headers = std::move(headers);

  auto dl = MakeMessage();
  dl->exchange = dlx;
  dl->routing_key = route_keys.front();
  ByteBuffer raw;
  amqp::EncodeProperties(props, raw);
  dl->SetProperties(raw.span());
  auto body = m.body();
  dl->data.insert(dl->data.end(), body.begin(), body.end());
  dl->headers = props.headers;
  dl->delivery_mode = m.delivery_mode;
  dl->priority = props.priority.value_or(0);  // m.priority is unset for a message read back

  std::vector<Queue*> targets;
  for (const auto& key : route_keys) {
    std::vector<const Exchange*> visited;
    Route(*ex, *dl, key, targets, visited);
  }
  if (reason != DeathReason::kRejected) {
    std::erase_if(targets, [&](Queue* t) {
      if (!IsCycle(t->name(), deaths)) return false;
      Log()->debug("message dead-lettered from queue '{}' dropped: cycle through queue '{}'",
                   q.name(), t->name());
      return true;
    });
  }
  // A chain of dead-letterings (queue to queue to ...) is bounded by the cycle check; the depth
  // guard protects the stack against a cycle that involves rejections inside one call.
  if (dead_letter_depth_ > 64) return;
  ++dead_letter_depth_;
  MessagePtr shared = std::move(dl);
  for (Queue* t : targets) t->Enqueue(shared);
  --dead_letter_depth_;
}

}  // namespace warren::broker
