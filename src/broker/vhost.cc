#include <algorithm>
#include <chrono>
#include <functional>

#include "amqp/codec/methods.h"
#include "base/random_name.h"
#include "broker/broker.h"

namespace warren::broker {

namespace {

std::string Bool(bool b) { return b ? "true" : "false"; }

std::optional<ExchangeType> ParseType(const std::string& t) {
  if (t == "direct") return ExchangeType::kDirect;
  if (t == "fanout") return ExchangeType::kFanout;
  if (t == "topic") return ExchangeType::kTopic;
  if (t == "headers") return ExchangeType::kHeaders;
  return std::nullopt;
}

// Server-named queues: "amq.gen-" + 22 url-safe base64 characters, like RabbitMQ.
std::string GeneratedName() { return RandomName("amq.gen-"); }

// The value part of RabbitMQ's inequivalent-arg text: "the value '1000' of type 'signedint'".
// RabbitMQ's assert_args_equivalence: with both values present only the values are shown
// ("received '2000' but current is '1000'"); with one missing, type and value ("received the
// value 'dx' of type 'longstr' but current is none").
std::string InequivalentArg(const amqp::FieldValue* got, const amqp::FieldValue* cur);

std::string DescribeArg(const amqp::FieldValue* v) {
  if (v == nullptr) return "none";
  std::string shown;
  if (auto i = v->AsInt()) {
    shown = std::to_string(*i);
  } else if (const auto* s = v->AsString()) {
    shown = *s;
  } else if (const auto* b = v->get_if<bool>()) {
    shown = Bool(*b);
  } else {
    shown = "...";
  }
  return "the value '" + shown + "' of type '" + std::string(v->TypeName()) + "'";
}

std::string ShownValue(const amqp::FieldValue& v) {
  if (auto i = v.AsInt()) return std::to_string(*i);
  if (const auto* s = v.AsString()) return *s;
  if (const auto* b = v.get_if<bool>()) return Bool(*b);
  return "...";
}

std::string InequivalentArg(const amqp::FieldValue* got, const amqp::FieldValue* cur) {
  if (got != nullptr && cur != nullptr) {
    return "received '" + ShownValue(*got) + "' but current is '" + ShownValue(*cur) + "'";
  }
  return "received " + DescribeArg(got) + " but current is " + DescribeArg(cur);
}

bool ArgEquivalent(const amqp::FieldValue* a, const amqp::FieldValue* b) {
  if (a == nullptr || b == nullptr) return a == b;
  auto ai = a->AsInt(), bi = b->AsInt();
  if (ai && bi) return *ai == *bi;
  return *a == *b;
}

// Queue arguments RabbitMQ compares on redeclare (classic queues); others are ignored.
constexpr const char* kComparedQueueArgs[] = {
    "x-expires",    "x-message-ttl",      "x-dead-letter-exchange",   "x-dead-letter-routing-key",
    "x-max-length", "x-max-length-bytes", "x-max-priority",           "x-overflow",
    "x-queue-mode", "x-queue-version",    "x-single-active-consumer", "x-queue-type"};

}  // namespace

Vhost::Vhost(std::string name, storage::Store* store, BrokerOptions options)
    : name_(std::move(name)), store_(store), options_(options) {
  Tick();
  if (options_.io != nullptr) timer_ = std::make_unique<boost::asio::steady_timer>(*options_.io);
  auto add = [this](const std::string& n, ExchangeType t, const std::string& tn, bool internal) {
    Exchange e;
    e.name = n;
    e.type = t;
    e.type_name = tn;
    e.durable = true;
    e.internal = internal;
    exchanges_.emplace(n, std::move(e));
  };
  add("", ExchangeType::kDirect, "direct", false);
  add("amq.direct", ExchangeType::kDirect, "direct", false);
  add("amq.fanout", ExchangeType::kFanout, "fanout", false);
  add("amq.topic", ExchangeType::kTopic, "topic", false);
  add("amq.headers", ExchangeType::kHeaders, "headers", false);
  add("amq.match", ExchangeType::kHeaders, "headers", false);
  add("amq.rabbitmq.trace", ExchangeType::kTopic, "topic", true);
}

void Vhost::Changed(bool durable) {
  if (durable && store_ != nullptr && !loading_) store_->DefinitionsChanged();
}

bool Vhost::IsDurableDestination(const std::string& name, bool to_exchange) const {
  if (to_exchange) {
    const Exchange* e = FindExchange(name);
    return e != nullptr && e->durable;
  }
  auto q = FindQueue(name);
  return q != nullptr && q->durable() && !q->owner();
}

std::string Vhost::QueueText(const std::string& q) const {
  return "queue '" + q + "' in vhost '" + name_ + "'";
}
std::string Vhost::ExchangeText(const std::string& x) const {
  return "exchange '" + x + "' in vhost '" + name_ + "'";
}

QueuePtr Vhost::FindQueue(const std::string& name) const {
  auto it = queues_.find(name);
  return it == queues_.end() ? nullptr : it->second;
}

const Exchange* Vhost::FindExchange(const std::string& name) const {
  auto it = exchanges_.find(name);
  return it == exchanges_.end() ? nullptr : &it->second;
}

std::optional<Error> Vhost::ExchangeDeclare(const std::string& name, const std::string& type,
                                            bool passive, bool durable, bool auto_delete,
                                            bool internal, const amqp::FieldTable& args) {
  if (name.empty()) {
    return Error{amqp::kAccessRefused, "operation not permitted on the default exchange"};
  }
  auto it = exchanges_.find(name);
  if (passive) {
    if (it == exchanges_.end()) return Error{amqp::kNotFound, "no " + ExchangeText(name)};
    return std::nullopt;
  }
  if (it == exchanges_.end() && name.rfind("amq.", 0) == 0) {
    return Error{amqp::kAccessRefused,
                 "exchange name '" + name + "' contains reserved prefix 'amq.*'"};
  }
  auto parsed = ParseType(type);
  if (!parsed) {
    // RabbitMQ 3.x: a connection error (4.x made it a channel-level 406).
    return Error{amqp::kCommandInvalid, "unknown exchange type '" + type + "'"};
  }
  if (it != exchanges_.end()) {
    const Exchange& e = it->second;
    auto fail = [&](const char* what, const std::string& got, const std::string& cur) {
      return Error{amqp::kPreconditionFailed, std::string("inequivalent arg '") + what + "' for " +
                                                  ExchangeText(name) + ": received '" + got +
                                                  "' but current is '" + cur + "'"};
    };
    if (e.type_name != type) return fail("type", type, e.type_name);
    if (e.durable != durable) return fail("durable", Bool(durable), Bool(e.durable));
    if (e.auto_delete != auto_delete) {
      return fail("auto_delete", Bool(auto_delete), Bool(e.auto_delete));
    }
    if (e.internal != internal) return fail("internal", Bool(internal), Bool(e.internal));
    const auto* got = amqp::Find(args, "alternate-exchange");
    const auto* cur = amqp::Find(e.args, "alternate-exchange");
    if (!ArgEquivalent(got, cur)) {
      return Error{amqp::kPreconditionFailed, "inequivalent arg 'alternate-exchange' for " +
                                                  ExchangeText(name) + ": " +
                                                  InequivalentArg(got, cur)};
    }
    return std::nullopt;
  }
  Exchange e;
  e.name = name;
  e.type = *parsed;
  e.type_name = type;
  e.durable = durable;
  e.auto_delete = auto_delete;
  e.internal = internal;
  e.args = args;
  exchanges_.emplace(name, std::move(e));
  Changed(durable);
  return std::nullopt;
}

std::optional<Error> Vhost::ExchangeDelete(const std::string& name, bool if_unused) {
  if (name.empty()) {
    return Error{amqp::kAccessRefused, "operation not permitted on the default exchange"};
  }
  if (name.rfind("amq.", 0) == 0) {
    return Error{amqp::kAccessRefused,
                 "exchange name '" + name + "' contains reserved prefix 'amq.*'"};
  }
  auto it = exchanges_.find(name);
  if (it == exchanges_.end()) return std::nullopt;  // idempotent, as RabbitMQ 3.x
  if (if_unused) {
    bool used = !it->second.bindings.empty();
    for (const auto& [n, e] : exchanges_) {
      for (const auto& b : e.bindings) used = used || (b.to_exchange && b.destination == name);
    }
    if (used) return Error{amqp::kPreconditionFailed, ExchangeText(name) + " in use"};
  }
  const bool durable = it->second.durable;
  exchanges_.erase(it);
  RemoveBindingsTo(name, /*to_exchange=*/true);
  Changed(durable);
  return std::nullopt;
}

std::optional<Error> Vhost::ExchangeBind(const std::string& destination, const std::string& source,
                                         const std::string& key, const amqp::FieldTable& args) {
  if (destination.empty() || source.empty()) {
    return Error{amqp::kAccessRefused, "operation not permitted on the default exchange"};
  }
  if (!exchanges_.contains(destination)) {
    return Error{amqp::kNotFound, "no " + ExchangeText(destination)};
  }
  auto it = exchanges_.find(source);
  if (it == exchanges_.end()) return Error{amqp::kNotFound, "no " + ExchangeText(source)};
  for (const auto& b : it->second.bindings) {
    if (b.to_exchange && b.destination == destination && b.key == key &&
        TablesEquivalent(b.args, args)) {
      return std::nullopt;
    }
  }
  it->second.bindings.push_back(Binding{destination, true, key, args, {}});
  it->second.IndexLast();
  Changed(it->second.durable && IsDurableDestination(destination, true));
  return std::nullopt;
}

std::optional<Error> Vhost::ExchangeUnbind(const std::string& destination,
                                           const std::string& source, const std::string& key,
                                           const amqp::FieldTable& args) {
  if (destination.empty() || source.empty()) {
    return Error{amqp::kAccessRefused, "operation not permitted on the default exchange"};
  }
  auto it = exchanges_.find(source);
  if (it == exchanges_.end()) return std::nullopt;
  auto& bs = it->second.bindings;
  const size_t before = bs.size();
  std::erase_if(bs, [&](const Binding& b) {
    return b.to_exchange && b.destination == destination && b.key == key &&
           TablesEquivalent(b.args, args);
  });
  if (bs.size() != before) Changed(it->second.durable);
  it->second.Reindex();
  MaybeAutoDeleteExchange(source);
  return std::nullopt;
}

std::optional<Error> Vhost::CheckExclusive(const Queue& q, ConnectionId conn) const {
  if (q.owner() && *q.owner() != conn) {
    return Error{amqp::kResourceLocked,
                 "cannot obtain exclusive access to locked " + QueueText(q.name()) +
                     ". It could be originally declared on another connection or the exclusive "
                     "property value does not match that of the original declaration."};
  }
  return std::nullopt;
}

Result<DeclareOk> Vhost::QueueDeclare(const std::string& name_in, bool passive, bool durable,
                                      bool exclusive, bool auto_delete,
                                      const amqp::FieldTable& args, ConnectionId conn) {
  if (auto r = DeclareReplyQueue(name_in)) return *r;
  std::string name = name_in;
  if (name.empty() && !passive) name = GeneratedName();
  auto it = queues_.find(name);
  if (passive) {
    if (it == queues_.end()) return {std::nullopt, Error{amqp::kNotFound, "no " + QueueText(name)}};
    if (auto e = CheckExclusive(*it->second, conn)) return {std::nullopt, e};
    Queue& q = *it->second;
    q.Touch();
    return {DeclareOk{name, static_cast<uint32_t>(q.message_count()),
                      static_cast<uint32_t>(q.consumer_count())},
            std::nullopt};
  }
  if (name_in.rfind("amq.", 0) == 0 && !loading_) {  // server-named durable queues reload
    return {std::nullopt, Error{amqp::kAccessRefused,
                                "queue name '" + name_in + "' contains reserved prefix 'amq.*'"}};
  }
  if (exclusive) durable = false;  // RabbitMQ errata: durable exclusive queues are transient
  if (it != queues_.end()) {
    Queue& q = *it->second;
    if (auto e = CheckExclusive(q, conn)) return {std::nullopt, e};
    if (q.owner().has_value() != exclusive) {
      return {std::nullopt, Error{amqp::kResourceLocked,
                                  "cannot obtain exclusive access to locked " + QueueText(name) +
                                      ". It could be originally declared on another connection "
                                      "or the exclusive property value does not match that of "
                                      "the original declaration."}};
    }
    auto fail = [&](const char* what, bool got, bool cur) {
      return Result<DeclareOk>{
          std::nullopt,
          Error{amqp::kPreconditionFailed, std::string("inequivalent arg '") + what + "' for " +
                                               QueueText(name) + ": received '" + Bool(got) +
                                               "' but current is '" + Bool(cur) + "'"}};
    };
    if (q.durable() != durable) return fail("durable", durable, q.durable());
    if (q.auto_delete() != auto_delete) return fail("auto_delete", auto_delete, q.auto_delete());
    for (const char* key : kComparedQueueArgs) {
      const auto* got = amqp::Find(args, key);
      const auto* cur = amqp::Find(q.args(), key);
      if (!ArgEquivalent(got, cur)) {
        return {std::nullopt, Error{amqp::kPreconditionFailed,
                                    std::string("inequivalent arg '") + key + "' for " +
                                        QueueText(name) + ": " + InequivalentArg(got, cur)}};
      }
    }
    q.Touch();
    return {DeclareOk{name, static_cast<uint32_t>(q.message_count()),
                      static_cast<uint32_t>(q.consumer_count())},
            std::nullopt};
  }
  if (options_.max_queues != 0 && !loading_ && queues_.size() >= options_.max_queues) {
    // RabbitMQ 3.10 (rabbit_amqqueue:check_vhost_queue_limit) names the queue, generated
    // names included.
    return {std::nullopt,
            Error{amqp::kPreconditionFailed,
                  "cannot declare queue '" + name + "': queue limit in vhost '" + name_ + "' (" +
                      std::to_string(options_.max_queues) + ") is reached"}};
  }
  auto settings = ParseQueueSettings(args, QueueText(name), name, name_);
  if (settings.error) return {std::nullopt, Error{amqp::kPreconditionFailed, *settings.error}};
  auto q = std::make_shared<Queue>(name, durable, auto_delete,
                                   exclusive ? std::optional<ConnectionId>(conn) : std::nullopt,
                                   args, options_.queue_memory_bytes);
  q->Configure(*settings.settings, this);
  q->consumers().set_single_active(settings.settings->single_active_consumer);
  if (memory_pressure_) q->SetMemoryPressure(true);
  if (durable && store_ != nullptr) q->AttachLog(store_->OpenQueue(name_, name));
  queues_.emplace(name, q);
  if (exclusive) exclusive_[conn.value()].push_back(name);
  Changed(durable);
  // Every queue is bound to the default exchange by its name (implicit, not listed).
  return {DeclareOk{name, 0, 0}, std::nullopt};
}

std::optional<Error> Vhost::QueueBind(const std::string& queue, const std::string& exchange,
                                      const std::string& key, const amqp::FieldTable& args,
                                      ConnectionId conn) {
  if (exchange.empty()) {
    return Error{amqp::kAccessRefused, "operation not permitted on the default exchange"};
  }
  auto q = FindQueue(queue);
  if (!q) return Error{amqp::kNotFound, "no " + QueueText(queue)};
  if (auto e = CheckExclusive(*q, conn)) return e;
  auto it = exchanges_.find(exchange);
  if (it == exchanges_.end()) return Error{amqp::kNotFound, "no " + ExchangeText(exchange)};
  if (it->second.type == ExchangeType::kHeaders) {
    if (const auto* m = amqp::Find(args, "x-match")) {
      const auto* s = m->AsString();
      if (s == nullptr ||
          (*s != "all" && *s != "any" && *s != "all-with-x" && *s != "any-with-x")) {
        return Error{amqp::kPreconditionFailed,
                     "Invalid x-match field value " + (s ? "<<\"" + *s + "\">>" : std::string("")) +
                         "; expected all, any, all-with-x, or any-with-x"};
      }
    }
  }
  for (const auto& b : it->second.bindings) {
    if (!b.to_exchange && b.destination == queue && b.key == key &&
        TablesEquivalent(b.args, args)) {
      return std::nullopt;
    }
  }
  it->second.bindings.push_back(Binding{queue, false, key, args, {}});
  it->second.IndexLast();
  Changed(it->second.durable && IsDurableDestination(queue, false));
  return std::nullopt;
}

std::optional<Error> Vhost::QueueUnbind(const std::string& queue, const std::string& exchange,
                                        const std::string& key, const amqp::FieldTable& args,
                                        ConnectionId conn) {
  if (exchange.empty()) {
    return Error{amqp::kAccessRefused, "operation not permitted on the default exchange"};
  }
  auto q = FindQueue(queue);
  if (q) {
    if (auto e = CheckExclusive(*q, conn)) return e;
  }
  auto it = exchanges_.find(exchange);
  if (it == exchanges_.end()) return std::nullopt;
  const size_t before = it->second.bindings.size();
  std::erase_if(it->second.bindings, [&](const Binding& b) {
    return !b.to_exchange && b.destination == queue && b.key == key &&
           TablesEquivalent(b.args, args);
  });
  if (it->second.bindings.size() != before) Changed(it->second.durable);
  it->second.Reindex();
  MaybeAutoDeleteExchange(exchange);
  return std::nullopt;
}

Result<uint32_t> Vhost::QueuePurge(const std::string& queue, ConnectionId conn) {
  auto q = FindQueue(queue);
  if (!q) return {std::nullopt, Error{amqp::kNotFound, "no " + QueueText(queue)}};
  if (auto e = CheckExclusive(*q, conn)) return {std::nullopt, e};
  return {static_cast<uint32_t>(q->Purge()), std::nullopt};
}

Result<uint32_t> Vhost::QueueDelete(const std::string& queue, bool if_unused, bool if_empty,
                                    ConnectionId conn) {
  auto q = FindQueue(queue);
  if (!q) return {0u, std::nullopt};  // idempotent (RabbitMQ 3.x)
  if (auto e = CheckExclusive(*q, conn)) return {std::nullopt, e};
  if (if_unused && q->consumer_count() > 0) {
    return {std::nullopt, Error{amqp::kPreconditionFailed, QueueText(queue) + " in use"}};
  }
  if (if_empty && q->message_count() > 0) {
    return {std::nullopt, Error{amqp::kPreconditionFailed, QueueText(queue) + " not empty"}};
  }
  const auto n = static_cast<uint32_t>(q->message_count());
  DeleteQueue(q);
  return {n, std::nullopt};
}

void Vhost::DeleteQueue(const QueuePtr& q) {
  const std::string name = q->name();
  queues_.erase(name);
  if (q->owner()) {
    auto it = exclusive_.find(q->owner()->value());
    if (it != exclusive_.end()) {
      std::erase(it->second, name);
      if (it->second.empty()) exclusive_.erase(it);
    }
  }
  RemoveBindingsTo(name, /*to_exchange=*/false);
  q->MarkDeleted();
  if (store_ != nullptr) store_->DestroyQueue(q->TakeLog());
  Changed(q->durable() && !q->owner());
}

void Vhost::RemoveBindingsTo(const std::string& destination, bool to_exchange) {
  std::vector<std::string> touched;
  for (auto& [n, e] : exchanges_) {
    const size_t before = e.bindings.size();
    std::erase_if(e.bindings, [&](const Binding& b) {
      return b.to_exchange == to_exchange && b.destination == destination;
    });
    if (e.bindings.size() != before) {
      e.Reindex();
      touched.push_back(n);
    }
  }
  for (const auto& n : touched) MaybeAutoDeleteExchange(n);
}

void Vhost::MaybeAutoDeleteExchange(const std::string& name) {
  auto it = exchanges_.find(name);
  if (it == exchanges_.end() || !it->second.auto_delete || !it->second.bindings.empty()) return;
  Changed(it->second.durable);
  exchanges_.erase(it);
  RemoveBindingsTo(name, /*to_exchange=*/true);
}

void Vhost::Route(const Exchange& ex, const Message& m, const std::string& key,
                  std::vector<Queue*>& out, std::vector<const Exchange*>& visited) const {
  if (std::find(visited.begin(), visited.end(), &ex) != visited.end()) return;
  visited.push_back(&ex);
  auto add_queue = [&](const std::string& qname) {
    auto it = queues_.find(qname);
    if (it == queues_.end()) return;
    Queue* q = it->second.get();
    if (std::find(out.begin(), out.end(), q) == out.end()) out.push_back(q);
  };
  if (ex.name.empty()) {
    add_queue(key);
    return;
  }
  auto follow = [&](const Binding& b) {
    if (b.to_exchange) {
      if (const Exchange* dest = FindExchange(b.destination)) Route(*dest, m, key, out, visited);
    } else {
      add_queue(b.destination);
    }
  };
  switch (ex.type) {
    case ExchangeType::kDirect: {
      auto [first, last] = ex.direct_index.equal_range(key);
      for (auto it = first; it != last; ++it) follow(ex.bindings[it->second]);
      break;
    }
    case ExchangeType::kFanout:
      for (const Binding& b : ex.bindings) follow(b);
      break;
    case ExchangeType::kTopic: {
      std::vector<size_t> hits;
      ex.topic_index.Match(key, hits);
      for (size_t i : hits) follow(ex.bindings[i]);
      break;
    }
    case ExchangeType::kHeaders:
      for (const Binding& b : ex.bindings) {
        if (HeadersMatch(b.args, m.headers ? &*m.headers : nullptr)) follow(b);
      }
      break;
  }
  if (out.empty()) {
    if (const auto* ae = amqp::Find(ex.args, "alternate-exchange")) {
      if (const auto* s = ae->AsString()) {
        if (const Exchange* alt = FindExchange(*s)) Route(*alt, m, key, out, visited);
      }
    }
  }
}

Result<size_t> Vhost::Publish(const MessagePtr& message, bool* rejected) {
  const Exchange* ex = FindExchange(message->exchange);
  if (ex == nullptr) {
    return {std::nullopt, Error{amqp::kNotFound, "no " + ExchangeText(message->exchange)}};
  }
  if (ex->internal) {
    return {std::nullopt,
            Error{amqp::kAccessRefused, "cannot publish to internal " + ExchangeText(ex->name)}};
  }
  std::vector<Queue*> targets;
  std::vector<const Exchange*> visited;
  Route(*ex, *message, message->routing_key, targets, visited);
  for (const std::string& key : message->extra_routing_keys) {
    visited.clear();
    Route(*ex, *message, key, targets, visited);
  }
  for (Queue* q : targets) {
    if (!q->Enqueue(message) && rejected != nullptr) *rejected = true;
  }
  if (ex->name.empty() && !reply_queues_.empty()) DeliverReplies(message);
  return {targets.size(), std::nullopt};
}

Result<QueuePtr> Vhost::QueueForUse(const std::string& queue, ConnectionId conn) {
  auto q = FindQueue(queue);
  if (!q) return {std::nullopt, Error{amqp::kNotFound, "no " + QueueText(queue)}};
  if (auto e = CheckExclusive(*q, conn)) return {std::nullopt, e};
  return {q, std::nullopt};
}

std::optional<Error> Vhost::Consume(const QueuePtr& q, Consumer* c, bool exclusive,
                                    const amqp::FieldTable& args) {
  int64_t priority = 0;
  if (auto e = ConsumerPriority(args, QueueText(q->name()), priority)) {
    return Error{amqp::kPreconditionFailed, *e};
  }
  // RabbitMQ 3.10: no exclusive consume on a single-active-consumer queue, even an idle one.
  if (q->has_exclusive_consumer() ||
      (exclusive && (q->consumer_count() > 0 || q->consumers().single_active()))) {
    return Error{amqp::kAccessRefused, QueueText(q->name()) + " in exclusive use"};
  }
  q->AddConsumer(c, exclusive, priority);
  return std::nullopt;
}

void Vhost::Cancel(const QueuePtr& q, Consumer* c) {
  const bool was_active = q->consumers().active() == c;
  if (q->RemoveConsumer(c)) {
    auto it = queues_.find(q->name());
    if (it != queues_.end() && it->second == q) {
      DeleteQueue(q);
    } else {
      ForgetReplyQueue(q);
    }
    return;
  }
  // Single active consumer: what waited for the old active one goes to the new one.
  if (was_active) q->Dispatch();
}

// Indexed by owner: a closing connection costs its own exclusive queues, not a scan of every
// queue in the vhost (10,000 connections closing with 100,000 queues: bench/limits_scale.py).
void Vhost::OnConnectionClosed(ConnectionId conn) {
  auto it = exclusive_.find(conn.value());
  if (it == exclusive_.end()) return;
  const std::vector<std::string> names = std::move(it->second);
  exclusive_.erase(it);
  for (const auto& n : names) {
    auto q = queues_.find(n);
    if (q != queues_.end() && q->second->owner() && *q->second->owner() == conn) {
      DeleteQueue(QueuePtr(q->second));
    }
  }
}

void Vhost::Tick() {
  steady_now_ = std::chrono::steady_clock::now();
  now_ms_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
}

void Vhost::ScheduleWake(const QueuePtr& q, uint64_t at_ms) {
  // Never at or before now (RunTimers would loop); grouped into kWakeGranularityMs slots.
  at_ms = std::max(at_ms, now_ms_ + 1);
  at_ms = (at_ms + kWakeGranularityMs - 1) / kWakeGranularityMs * kWakeGranularityMs;
  wakes_.push_back(Wake{at_ms, q});
  std::push_heap(wakes_.begin(), wakes_.end(), std::greater<>());
  ArmTimer();
}

void Vhost::ArmTimer() {
  if (!timer_ || wakes_.empty()) return;
  const uint64_t at = wakes_.front().at;
  if (timer_at_ != 0 && timer_at_ <= at) return;
  timer_at_ = at;
  Tick();
  timer_->expires_after(std::chrono::milliseconds(at > now_ms_ ? at - now_ms_ : 0));
  timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed earlier, or shutting down
    timer_at_ = 0;
    RunTimers();
  });
}

void Vhost::RunTimers() {
  Tick();
  while (!wakes_.empty() && wakes_.front().at <= now_ms_) {
    std::pop_heap(wakes_.begin(), wakes_.end(), std::greater<>());
    Wake w = std::move(wakes_.back());
    wakes_.pop_back();
    if (auto q = w.queue.lock()) q->OnTimer(now_ms_);
  }
  ArmTimer();
}

void Vhost::ExpireQueue(const QueuePtr& q) {
  auto it = queues_.find(q->name());
  if (it != queues_.end() && it->second == q) DeleteQueue(q);
}

Broker::Broker(storage::Store* store, BrokerOptions options) : store_(store) {
  vhosts_.emplace("/", std::make_unique<Vhost>("/", store, options));
  if (store_ != nullptr)
    store_->SetDefinitionsSource([this](std::string& out) { ExportDefinitions(out); });
}

Broker::~Broker() {
  if (store_ != nullptr) store_->SetDefinitionsSource(nullptr);
}

Vhost* Broker::FindVhost(const std::string& name) {
  auto it = vhosts_.find(name);
  return it == vhosts_.end() ? nullptr : it->second.get();
}

}  // namespace warren::broker
