// Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to` pseudo-queue, docs/consumers.md).
//
// A channel that consumes `amq.rabbitmq.reply-to` (no-ack) gets a private pseudo-queue named
// `amq.rabbitmq.reply-to.<random>`: a Queue that is not in the vhost's queue map, so it cannot
// be bound, purged, got from or deleted, and routing never finds it. Only a publish to the
// default exchange with its exact name as routing key reaches it, and then the message goes
// straight to the one no-ack consumer. When that consumer goes (cancel, channel or connection
// closed) the name is forgotten and later replies are dropped.

#include <random>

#include "amqp/codec/methods.h"
#include "broker/broker.h"

namespace warren::broker {

namespace {

// Reply names must not be guessable by other clients: read the OS's random source (a consume
// on the pseudo-queue is rare; this is not on the message path).
std::string SecureToken(int length) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  std::string s;
  s.reserve(length);
  while (static_cast<int>(s.size()) < length) {
    uint32_t bits = rd();
    for (int i = 0; i < 5 && static_cast<int>(s.size()) < length; ++i, bits >>= 6) {
      s += kAlphabet[bits & 63];
    }
  }
  return s;
}

bool HasReplyPrefix(std::string_view key) {
  return key.size() > kReplyTo.size() && key.starts_with(kReplyTo) && key[kReplyTo.size()] == '.';
}

}  // namespace

QueuePtr Vhost::CreateReplyQueue() {
  std::string name;
  do {
    name = std::string(kReplyTo) + "." + SecureToken(22) + "." + SecureToken(22);
  } while (reply_queues_.contains(name));
  auto q = std::make_shared<Queue>(name, false, true, std::nullopt, amqp::FieldTable{});
  reply_queues_.emplace(name, q);
  return q;
}

void Vhost::ForgetReplyQueue(const QueuePtr& q) {
  if (!HasReplyPrefix(q->name())) return;
  auto it = reply_queues_.find(q->name());
  if (it != reply_queues_.end() && it->second == q) reply_queues_.erase(it);
}

std::optional<Result<DeclareOk>> Vhost::DeclareReplyQueue(const std::string& name) const {
  if (!name.starts_with(kReplyTo)) return std::nullopt;
  // Every declare of these names is passive; one that exists has exactly one consumer.
  if (name == kReplyTo || reply_queues_.contains(name)) {
    return Result<DeclareOk>{DeclareOk{name, 0, 1}, std::nullopt};
  }
  return Result<DeclareOk>{std::nullopt, Error{amqp::kNotFound, "no " + QueueText(name)}};
}

void Vhost::DeliverReplies(const MessagePtr& message) {
  auto deliver = [&](const std::string& key) {
    if (!HasReplyPrefix(key)) return;
    auto it = reply_queues_.find(key);
    if (it == reply_queues_.end()) return;  // the requester is gone: dropped, as RabbitMQ does
    QueuePtr q = it->second;                // Enqueue may cancel the consumer (channel closing)
    q->Enqueue(message);
    q->Purge();  // a consumer that could not take it now never will (no-ack, channel closing)
  };
  deliver(message->routing_key);
  for (const std::string& key : message->extra_routing_keys) deliver(key);
}

}  // namespace warren::broker
