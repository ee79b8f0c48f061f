#include <algorithm>
#include <set>

#include "amqp/codec/frame_writer.h"
#include "amqp/session/session.h"
#include "base/random_name.h"

namespace warren::amqp {

std::optional<Close> DispatchChannelMethod(Channel& ch, const Method& m);

namespace {

std::string RandomTag() { return RandomName("amq.ctag-"); }

// Sender-selected distribution (RabbitMQ extension): CC and BCC headers, arrays of long
// strings, add routing keys. BCC is removed from the message, which costs one re-encoding of
// the properties for messages that carry it.
void ApplySenderSelected(BasicProperties& props, broker::Message& m) {
  bool has_bcc = false;
  for (const char* key : {"CC", "BCC"}) {
    const FieldValue* v = Find(*props.headers, key);
    if (v == nullptr) continue;
    if (std::string_view(key) == "BCC") has_bcc = true;
    if (const auto* arr = v->get_if<FieldArray>()) {
      for (const FieldValue& e : *arr) {
        if (const auto* s = e.AsString()) m.extra_routing_keys.push_back(*s);
      }
    }
  }
  if (has_bcc) {
    std::erase_if(*props.headers, [](const FieldEntry& e) { return e.key == "BCC"; });
    ByteBuffer raw;
    EncodeProperties(props, raw);
    m.SetProperties(raw.span());
  }
}

// RabbitMQ 3.10 removes CR and LF from exchange names in exchange.declare and exchange.delete,
// and from queue names in queue.declare and queue.delete (checked against it; queue.purge,
// queue.bind and basic.* keep them).
std::string StripCrLf(std::string name) {
  std::erase_if(name, [](char c) { return c == '\r' || c == '\n'; });
  return name;
}

}  // namespace

// --- ChannelConsumer -------------------------------------------------------------------------

bool ChannelConsumer::CanAccept() const {
  if (ch_.closing_ || ch_.releasing_ || !ch_.flow_) return false;
  // A peer that does not read its socket: deliveries wait in the queue, not in our memory.
  if (ch_.conn_.WriteBufferFull()) return false;
  if (no_ack_) return true;
  if (prefetch_ != 0 && unacked >= prefetch_) return false;
  return ch_.GlobalCredit();
}

void ChannelConsumer::Deliver(const std::shared_ptr<broker::Queue>& q, broker::QueueEntry e) {
  const uint64_t tag = ch_.next_tag_++;
  ch_.WriteDelivery(this, e, tag);
  if (!no_ack_) {
    ++unacked;
    ch_.unacked_.Put(tag, Channel::Unacked{q, std::move(e), tag_, ch_.conn_.vhost().SteadyNow()});
  } else {
    q->Settle(e);
  }
}

void ChannelConsumer::OnQueueDeleted() {
  if (ch_.conn_.cancel_notify()) {
    BasicCancel cancel;
    cancel.consumer_tag = tag_;
    cancel.no_wait = true;
    ch_.conn_.Send(ch_.id_, cancel);
    ch_.conn_.transport().RequestFlush();
  }
  auto it = ch_.consumers_.find(tag_);
  if (it != ch_.consumers_.end()) {
    ch_.conn_.graveyard.push_back(std::move(it->second));  // `this` lives until then
    ch_.consumers_.erase(it);
  }
}

// --- Channel ---------------------------------------------------------------------------------

Channel::~Channel() { Release(); }

template <typename M>
void Channel::Reply(const M& m) {
  conn_.Send(id_, m);
}

std::optional<Close> Channel::Fail(uint16_t class_id, uint16_t method_id, const broker::Error& e) {
  return MakeClose(e.reply_code, e.text, class_id, method_id);
}

std::optional<Close> Channel::OnFrame(const Frame& f) {
  if (f.type == kFrameHeaderType) return OnContentHeader(f);
  if (f.type == kFrameBodyType) return OnContentBody(f);
  // RabbitMQ 3.10's texts; both name basic.publish.
  if (building_) {
    return MakeClose(kUnexpectedFrame, "expected content body, got non content body frame instead",
                     BasicPublish::kClassId, BasicPublish::kMethodId);
  }
  if (publishing_) {
    return MakeClose(kUnexpectedFrame,
                     "expected content header for class 60, got non content header frame "
                     "instead",
                     BasicPublish::kClassId, BasicPublish::kMethodId);
  }
  if (f.payload.size() >= 4 && f.payload[0] == std::byte{0} && f.payload[1] == std::byte{60} &&
      f.payload[2] == std::byte{0} && f.payload[3] == std::byte{40}) {
    // basic.publish is most of the traffic: decoded without the Method variant and moved in.
    // It changes no durable state itself (its content does, in CompletePublish).
    auto p = DecodeMethodAs<BasicPublish>(f.payload);
    if (!p) return p.error();
    return StartPublish(std::move(p).value());
  }
  auto m = DecodeMethod(f.payload);
  if (!m) return m.error();
  storage::Store* store = conn_.store();
  const uint64_t epoch_before = store != nullptr ? store->appended_epoch() : 0;
  const size_t mark = conn_.Output().size();
  auto result = DispatchChannelMethod(*this, m.value());
  if (!result && store != nullptr && store->appended_epoch() != epoch_before) {
    // The method changed durable state (a durable declare, bind or delete; a tx.commit with
    // persistent messages): its reply goes out once that is on disk. The connection reads
    // nothing more until then, so replies keep their order.
    ByteBuffer& out = conn_.Output();
    held_reply_.PutBytes(out.span().subspan(mark));
    out.Resize(mark);
    held_epoch_ = store->appended_epoch();
    conn_.WantSync();
    conn_.Pause();
  }
  return result;
}

void Channel::Release() {
  // Cancelling a single active consumer can make another consumer of this channel active:
  // it must not get deliveries now.
  releasing_ = true;
  for (auto& [tag, c] : consumers_) conn_.vhost().Cancel(c->queue(), c.get());
  // Requeue per queue in delivery order: Queue::Requeue restores arrival order by seq.
  std::map<broker::Queue*, std::pair<broker::QueuePtr, std::vector<broker::QueueEntry>>> byq;
  std::vector<uint64_t> tags;
  unacked_.ForEachTag(0, [&](uint64_t t) { tags.push_back(t); });
  for (uint64_t t : tags) {
    Unacked u = std::move(*unacked_.Take(t));
    auto& slot = byq[u.queue.get()];
    slot.first = u.queue;
    slot.second.push_back(std::move(u.entry));
  }
  // Keep the consumer objects until the queues stop dispatching to them.
  for (auto& [tag, c] : consumers_) conn_.graveyard.push_back(std::move(c));
  consumers_.clear();
  reply_queue_.reset();
  for (auto& [q, slot] : byq) slot.first->Requeue(std::move(slot.second));
  publishing_.reset();
  building_.reset();
  tx_publishes_.clear();
  tx_acks_.clear();
  waiting_.clear();
  held_epoch_ = 0;
  held_reply_.Clear();
}

std::optional<Close> Channel::CheckConsumerTimeout(std::chrono::steady_clock::time_point now,
                                                   std::chrono::milliseconds timeout) const {
  if (closing_ || timeout.count() == 0) return std::nullopt;
  const Unacked* oldest = unacked_.Oldest();
  if (oldest == nullptr || now - oldest->delivered_at <= timeout) return std::nullopt;
  // RabbitMQ 3.10's text; the close names no method.
  return MakeClose(kPreconditionFailed,
                   "delivery acknowledgement on channel " + std::to_string(id_) +
                       " timed out. Timeout value used: " + std::to_string(timeout.count()) +
                       " ms. This timeout value can be configured, see consumers doc guide to "
                       "learn more");
}

void Channel::AckPublishesUpTo(uint64_t seq) {
  if (seq <= confirmed_seq_) return;
  BasicAck ack;
  ack.delivery_tag = seq;
  ack.multiple = seq - confirmed_seq_ > 1;
  Reply(ack);
  confirmed_seq_ = seq;
}

void Channel::FlushConfirms() {
  if (!confirm_ || publish_seq_ == confirmed_seq_ || closing_) return;
  storage::Store* store = conn_.store();
  uint64_t upto = publish_seq_;
  while (!waiting_.empty()) {
    const auto [seq, epoch, nack] = waiting_.front();
    if (epoch != 0 && (store == nullptr || epoch > store->synced_epoch())) {
      upto = seq - 1;
      break;
    }
    waiting_.pop_front();
    if (nack || (store != nullptr && store->Failed(epoch))) {
      // Not known to be on disk: the publisher must not count on it (RabbitMQ nacks too).
      AckPublishesUpTo(seq - 1);
      BasicNack nack;
      nack.delivery_tag = seq;
      nack.requeue = false;
      Reply(nack);
      confirmed_seq_ = seq;
    }
  }
  AckPublishesUpTo(upto);
}

std::optional<Close> Channel::OnSynced() {
  FlushConfirms();
  storage::Store* store = conn_.store();
  if (held_epoch_ == 0 || store == nullptr || held_epoch_ > store->synced_epoch()) {
    return std::nullopt;
  }
  const bool failed = store->Failed(held_epoch_);
  held_epoch_ = 0;
  if (failed) {
    held_reply_.Clear();
    return MakeClose(kInternalError, "the change could not be written to disk");
  }
  conn_.Output().PutBytes(held_reply_.span());
  held_reply_.Clear();
  return std::nullopt;
}

void Channel::WriteDelivery(ChannelConsumer* c, const broker::QueueEntry& e, uint64_t tag) {
  WriteDeliver(conn_.Output(), id_, c->tag(), tag, e.redelivered, e.message->exchange,
               e.message->routing_key, e.message->properties(), e.message->body(),
               conn_.frame_max());
  conn_.transport().RequestFlush();
}

void Channel::DispatchAll() {
  std::vector<broker::QueuePtr> queues;
  for (auto& [tag, c] : consumers_) queues.push_back(c->queue());
  for (auto& q : queues) q->Dispatch();
}

std::optional<Close> Channel::ResolveQueue(std::string& name, uint16_t class_id,
                                           uint16_t method_id) {
  if (!name.empty()) return std::nullopt;
  if (last_queue_.empty()) {
    return MakeClose(kNotFound, "no previously declared queue", class_id, method_id);
  }
  name = last_queue_;
  return std::nullopt;
}

// --- channel, exchange and queue methods --------------------------------------------------

std::optional<Close> Channel::Handle(const ChannelFlow& m) {
  if (!m.active) {
    return MakeClose(kNotImplemented, "active=false", ChannelFlow::kClassId,
                     ChannelFlow::kMethodId);
  }
  ChannelFlowOk ok;
  ok.active = true;
  Reply(ok);
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const ExchangeDeclare& m) {
  if (auto e = conn_.vhost().ExchangeDeclare(StripCrLf(m.exchange), m.type, m.passive, m.durable,
                                             m.auto_delete, m.internal, m.arguments)) {
    return Fail(m.kClassId, m.kMethodId, *e);
  }
  if (!m.no_wait) Reply(ExchangeDeclareOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const ExchangeDelete& m) {
  if (auto e = conn_.vhost().ExchangeDelete(StripCrLf(m.exchange), m.if_unused)) {
    return Fail(m.kClassId, m.kMethodId, *e);
  }
  if (!m.no_wait) Reply(ExchangeDeleteOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const ExchangeBind& m) {
  if (auto e = conn_.vhost().ExchangeBind(m.destination, m.source, m.routing_key, m.arguments)) {
    return Fail(m.kClassId, m.kMethodId, *e);
  }
  if (!m.no_wait) Reply(ExchangeBindOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const ExchangeUnbind& m) {
  if (auto e = conn_.vhost().ExchangeUnbind(m.destination, m.source, m.routing_key, m.arguments)) {
    return Fail(m.kClassId, m.kMethodId, *e);
  }
  if (!m.no_wait) Reply(ExchangeUnbindOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const QueueDeclare& m) {
  const std::string queue = StripCrLf(m.queue);
  // A passive declare of "" does not mean the last declared queue (RabbitMQ: 404).
  auto r = conn_.vhost().QueueDeclare(queue, m.passive, m.durable, m.exclusive, m.auto_delete,
                                      m.arguments, conn_.id());
  if (!r.ok()) return Fail(m.kClassId, m.kMethodId, *r.error);
  last_queue_ = r.value->queue;
  if (!m.no_wait) {
    QueueDeclareOk ok;
    ok.queue = r.value->queue;
    ok.message_count = r.value->message_count;
    ok.consumer_count = r.value->consumer_count;
    Reply(ok);
  }
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const QueueBind& m) {
  std::string q = m.queue;
  if (auto e = ResolveQueue(q, m.kClassId, m.kMethodId)) return e;
  if (auto e = conn_.vhost().QueueBind(q, m.exchange, m.routing_key, m.arguments, conn_.id())) {
    return Fail(m.kClassId, m.kMethodId, *e);
  }
  if (!m.no_wait) Reply(QueueBindOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const QueueUnbind& m) {
  std::string q = m.queue;
  if (auto e = ResolveQueue(q, m.kClassId, m.kMethodId)) return e;
  if (auto e = conn_.vhost().QueueUnbind(q, m.exchange, m.routing_key, m.arguments, conn_.id())) {
    return Fail(m.kClassId, m.kMethodId, *e);
  }
  Reply(QueueUnbindOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const QueuePurge& m) {
  std::string q = m.queue;
  if (auto e = ResolveQueue(q, m.kClassId, m.kMethodId)) return e;
  auto r = conn_.vhost().QueuePurge(q, conn_.id());
  if (!r.ok()) return Fail(m.kClassId, m.kMethodId, *r.error);
  if (!m.no_wait) {
    QueuePurgeOk ok;
    ok.message_count = *r.value;
    Reply(ok);
  }
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const QueueDelete& m) {
  std::string q = StripCrLf(m.queue);
  if (auto e = ResolveQueue(q, m.kClassId, m.kMethodId)) return e;
  auto r = conn_.vhost().QueueDelete(q, m.if_unused, m.if_empty, conn_.id());
  if (!r.ok()) return Fail(m.kClassId, m.kMethodId, *r.error);
  if (!m.no_wait) {
    QueueDeleteOk ok;
    ok.message_count = *r.value;
    Reply(ok);
  }
  return std::nullopt;
}

// --- basic -----------------------------------------------------------------------------------

std::optional<Close> Channel::Handle(const BasicQos& m) {
  if (m.prefetch_size != 0) {
    return MakeClose(kNotImplemented, "prefetch_size!=0 (" + std::to_string(m.prefetch_size) + ")",
                     m.kClassId, m.kMethodId);
  }
  if (m.global) {
    prefetch_global_ = m.prefetch_count;
  } else {
    prefetch_default_ = m.prefetch_count;
  }
  Reply(BasicQosOk{});
  DispatchAll();
  return std::nullopt;
}

// Direct reply-to: RabbitMQ checks the tag, then no-ack, then one per channel; the exclusive
// flag and the arguments are ignored.
std::optional<Close> Channel::ConsumeReplies(const BasicConsume& m) {
  std::string tag = m.consumer_tag.empty() ? RandomTag() : m.consumer_tag;
  if (consumers_.contains(m.consumer_tag)) {
    return MakeClose(kNotAllowed, "attempt to reuse consumer tag '" + m.consumer_tag + "'",
                     m.kClassId, m.kMethodId);
  }
  if (!m.no_ack) {
    return MakeClose(kPreconditionFailed, "reply consumer cannot acknowledge", m.kClassId,
                     m.kMethodId);
  }
  if (reply_queue_) {
    return MakeClose(kPreconditionFailed, "reply consumer already set", m.kClassId, m.kMethodId);
  }
  auto q = conn_.vhost().CreateReplyQueue();
  auto c = std::make_unique<ChannelConsumer>(*this, tag, q, true, 0);
  if (auto e = conn_.vhost().Consume(q, c.get(), false)) return Fail(m.kClassId, m.kMethodId, *e);
  consumers_.emplace(tag, std::move(c));
  reply_queue_ = std::move(q);
  if (!m.no_wait) {
    BasicConsumeOk ok;
    ok.consumer_tag = tag;
    Reply(ok);
  }
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const BasicConsume& m) {
  if (m.queue == broker::kReplyTo) return ConsumeReplies(m);
  std::string qname = m.queue;
  if (auto e = ResolveQueue(qname, m.kClassId, m.kMethodId)) return e;
  auto q = conn_.vhost().QueueForUse(qname, conn_.id());
  if (!q.ok()) return Fail(m.kClassId, m.kMethodId, *q.error);
  std::string tag = m.consumer_tag.empty() ? RandomTag() : m.consumer_tag;
  if (consumers_.contains(tag)) {
    return MakeClose(kNotAllowed, "attempt to reuse consumer tag '" + tag + "'", m.kClassId,
                     m.kMethodId);
  }
  auto c = std::make_unique<ChannelConsumer>(*this, tag, *q.value, m.no_ack, prefetch_default_);
  if (auto e = conn_.vhost().Consume(*q.value, c.get(), m.exclusive, m.arguments)) {
    return Fail(m.kClassId, m.kMethodId, *e);
  }
  consumers_.emplace(tag, std::move(c));
  if (!m.no_wait) {
    BasicConsumeOk ok;
    ok.consumer_tag = tag;
    Reply(ok);
  }
  (*q.value)->Dispatch();  // after consume-ok, so the client knows the tag first
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const BasicCancel& m) {
  auto it = consumers_.find(m.consumer_tag);
  if (it != consumers_.end()) {
    auto c = std::move(it->second);
    consumers_.erase(it);
    if (c->queue() == reply_queue_) reply_queue_.reset();
    conn_.vhost().Cancel(c->queue(), c.get());
    conn_.graveyard.push_back(std::move(c));
  }
  if (!m.no_wait) {
    BasicCancelOk ok;
    ok.consumer_tag = m.consumer_tag;
    Reply(ok);
  }
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const BasicPublish& m) {
  return StartPublish(BasicPublish(m));
}

std::optional<Close> Channel::StartPublish(BasicPublish&& m) {
  if (m.immediate) {
    return MakeClose(kNotImplemented, "immediate=true", m.kClassId, m.kMethodId);
  }
  publishing_ = std::move(m);
  return std::nullopt;
}

std::optional<Close> Channel::OnContentHeader(const Frame& f) {
  if (!publishing_ || building_) {
    return MakeClose(kUnexpectedFrame, "expected method frame, got non method frame instead");
  }
  auto h = DecodeContentHeader(f.payload);
  if (!h) return h.error();
  if (h.value().class_id != BasicPublish::kClassId) {
    return MakeClose(kUnexpectedFrame,
                     "expected content header for class 60, got one for class " +
                         std::to_string(h.value().class_id) + " instead",
                     BasicPublish::kClassId, BasicPublish::kMethodId);
  }
  if (h.value().body_size > conn_.config().max_message_size) {
    auto e = MakeClose(kPreconditionFailed,
                       "message size " + std::to_string(h.value().body_size) +
                           " is larger than configured max size " +
                           std::to_string(conn_.config().max_message_size),
                       BasicPublish::kClassId, BasicPublish::kMethodId);
    publishing_.reset();
    return e;
  }
  BasicProperties& props = h.value().properties;
  if (props.user_id && *props.user_id != conn_.user()) {
    publishing_.reset();
    return MakeClose(kPreconditionFailed,
                     "user_id property set to '" + *props.user_id +
                         "' but authenticated user was '" + conn_.user() + "'",
                     BasicPublish::kClassId, BasicPublish::kMethodId);
  }
  building_ = broker::MakeMessage();
  building_->exchange = std::move(publishing_->exchange);
  building_->routing_key = std::move(publishing_->routing_key);
  building_->SetProperties(h.value().raw_properties);
  if (props.reply_to && *props.reply_to == broker::kReplyTo) {
    // Direct reply-to: the reply address becomes this channel's reply queue.
    if (!reply_queue_) {
      publishing_.reset();
      building_.reset();
      return MakeClose(kPreconditionFailed, "fast reply consumer does not exist",
                       BasicPublish::kClassId, BasicPublish::kMethodId);
    }
    props.reply_to = reply_queue_->name();
    ByteBuffer raw;
    EncodeProperties(props, raw);
    building_->SetProperties(raw.span());
  }
  if (props.expiration) {
    uint64_t ms = 0;
    if (auto err = broker::ParseExpiration(*props.expiration, ms)) {
      publishing_.reset();
      building_.reset();
      return MakeClose(kPreconditionFailed, *err, BasicPublish::kClassId, BasicPublish::kMethodId);
    }
    building_->expiration_ms = ms;
  }
  if (props.headers) ApplySenderSelected(props, *building_);
  building_->headers = std::move(props.headers);
  building_->delivery_mode = props.delivery_mode.value_or(1);
  building_->priority = props.priority.value_or(0);
  body_expected_ = h.value().body_size;
  // Reserve what one read can bring, not what the header claims: a peer must not make us
  // allocate max_message_size per channel by announcing a body it never sends.
  building_->data.reserve(building_->data.size() + std::min<uint64_t>(body_expected_, 1 << 20));
  if (body_expected_ == 0) return CompletePublish();
  return std::nullopt;
}

std::optional<Close> Channel::OnContentBody(const Frame& f) {
  if (!building_) {
    return MakeClose(kUnexpectedFrame, "expected method frame, got non method frame instead");
  }
  if (building_->body_size() + f.payload.size() > body_expected_) {
    return MakeClose(kFrameError, "content body larger than declared in the content header");
  }
  building_->data.insert(building_->data.end(), f.payload.begin(), f.payload.end());
  if (building_->body_size() == body_expected_) return CompletePublish();
  return std::nullopt;
}

std::optional<Close> Channel::CompletePublish() {
  broker::MessagePtr m = std::move(building_);
  const bool mandatory = publishing_->mandatory;
  publishing_.reset();
  building_.reset();
  if (tx_) {
    // Checked now so the error names basic.publish, as RabbitMQ does.
    if (conn_.vhost().FindExchange(m->exchange) == nullptr) {
      return MakeClose(kNotFound,
                       "no exchange '" + m->exchange + "' in vhost '" + conn_.vhost().name() + "'",
                       BasicPublish::kClassId, BasicPublish::kMethodId);
    }
    tx_publishes_.push_back(TxPublish{std::move(m), mandatory});
    return std::nullopt;
  }
  return DoPublish(m, mandatory);
}

std::optional<Close> Channel::DoPublish(const broker::MessagePtr& m, bool mandatory) {
  storage::Store* store = conn_.store();
  const uint64_t epoch_before = store != nullptr ? store->appended_epoch() : 0;
  bool rejected = false;
  auto r = conn_.vhost().Publish(m, &rejected);
  if (!r.ok()) return Fail(BasicPublish::kClassId, BasicPublish::kMethodId, *r.error);
  if (*r.value == 0 && mandatory) {
    BasicReturn ret;
    ret.reply_code = kNoRoute;
    ret.reply_text = "NO_ROUTE";
    ret.exchange = m->exchange;
    ret.routing_key = m->routing_key;
    WriteContent(conn_.Output(), id_, ret, m->properties(), m->body(), conn_.frame_max());
  }
  if (confirm_) {
    ++publish_seq_;
    // Stored in a durable queue's log: the confirm waits for the fdatasync that covers it.
    if (rejected) {
      // A queue refused it (x-overflow reject-publish): nacked in order with the others.
      waiting_.push_back(
          Waiting{publish_seq_, store != nullptr ? store->appended_epoch() : 0, true});
    } else if (store != nullptr && store->appended_epoch() != epoch_before) {
      waiting_.push_back(Waiting{publish_seq_, store->appended_epoch(), false});
    }
  }
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const BasicGet& m) {
  std::string qname = m.queue;
  if (auto e = ResolveQueue(qname, m.kClassId, m.kMethodId)) return e;
  auto q = conn_.vhost().QueueForUse(qname, conn_.id());
  if (!q.ok()) return Fail(m.kClassId, m.kMethodId, *q.error);
  auto entry = (*q.value)->Get();
  if (!entry) {
    Reply(BasicGetEmpty{});
    return std::nullopt;
  }
  const uint64_t tag = next_tag_++;
  BasicGetOk ok;
  ok.delivery_tag = tag;
  ok.redelivered = entry->redelivered;
  ok.exchange = entry->message->exchange;
  ok.routing_key = entry->message->routing_key;
  ok.message_count = static_cast<uint32_t>((*q.value)->message_count());
  WriteContent(conn_.Output(), id_, ok, entry->message->properties(), entry->message->body(),
               conn_.frame_max());
  if (!m.no_ack) {
    unacked_.Put(tag, Unacked{*q.value, std::move(*entry), "", conn_.vhost().SteadyNow()});
  } else {
    (*q.value)->Settle(*entry);
  }
  return std::nullopt;
}

std::vector<uint64_t> Channel::TagsFor(uint64_t tag, bool multiple) const {
  std::vector<uint64_t> tags;
  if (multiple) {
    unacked_.ForEachTag(tag, [&](uint64_t t) { tags.push_back(t); });
  } else if (unacked_.Contains(tag)) {
    tags.push_back(tag);
  }
  return tags;
}

std::optional<Close> Channel::Settle(uint64_t tag, bool multiple, bool ack, bool requeue,
                                     uint16_t method_id) {
  // Unknown tag: RabbitMQ refuses it, also with multiple=true (tag 0 + multiple = "all").
  if (!(multiple && tag == 0) && !unacked_.Contains(tag)) {
    return MakeClose(kPreconditionFailed, "unknown delivery tag " + std::to_string(tag), 60,
                     method_id);
  }
  if (tx_) {
    tx_acks_.push_back(TxAck{tag, multiple, ack, requeue});
    return std::nullopt;
  }
  ApplySettle(TagsFor(tag, multiple), ack, requeue);
  return std::nullopt;
}

void Channel::ApplySettle(const std::vector<uint64_t>& tags, bool ack, bool requeue) {
  std::map<broker::Queue*, std::pair<broker::QueuePtr, std::vector<broker::QueueEntry>>> back;
  for (uint64_t t : tags) {
    auto taken = unacked_.Take(t);
    if (!taken) continue;
    Unacked u = std::move(*taken);
    if (!u.consumer_tag.empty()) {
      auto c = consumers_.find(u.consumer_tag);
      if (c != consumers_.end() && c->second->unacked > 0) --c->second->unacked;
    }
    if (!ack && requeue) {
      auto& slot = back[u.queue.get()];
      slot.first = u.queue;
      slot.second.push_back(std::move(u.entry));
    } else if (!ack) {
      u.queue->Reject(std::move(u.entry));  // dead-lettered if the queue has a DLX
    } else {
      u.queue->Settle(u.entry);
    }
  }
  for (auto& [q, slot] : back) slot.first->Requeue(std::move(slot.second));
  DispatchAll();
}

std::optional<Close> Channel::Handle(const BasicAck& m) {
  return Settle(m.delivery_tag, m.multiple, true, false, m.kMethodId);
}
std::optional<Close> Channel::Handle(const BasicReject& m) {
  return Settle(m.delivery_tag, false, false, m.requeue, m.kMethodId);
}
std::optional<Close> Channel::Handle(const BasicNack& m) {
  return Settle(m.delivery_tag, m.multiple, false, m.requeue, m.kMethodId);
}

std::optional<Close> Channel::Handle(const BasicRecover& m) {
  if (!m.requeue) return MakeClose(kNotImplemented, "requeue=false", m.kClassId, m.kMethodId);
  ApplySettle(TagsFor(0, true), false, true);
  Reply(BasicRecoverOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const BasicRecoverAsync& m) {
  if (!m.requeue) return MakeClose(kNotImplemented, "requeue=false", m.kClassId, m.kMethodId);
  ApplySettle(TagsFor(0, true), false, true);
  return std::nullopt;
}

// --- confirms and transactions -------------------------------------------------------------

std::optional<Close> Channel::Handle(const ConfirmSelect& m) {
  if (tx_) {
    return MakeClose(kPreconditionFailed, "cannot switch from tx to confirm mode", m.kClassId,
                     m.kMethodId);
  }
  confirm_ = true;
  if (!m.nowait) Reply(ConfirmSelectOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const TxSelect& m) {
  if (confirm_) {
    return MakeClose(kPreconditionFailed, "cannot switch from confirm to tx mode", m.kClassId,
                     m.kMethodId);
  }
  tx_ = true;
  Reply(TxSelectOk{});
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const TxCommit& m) {
  if (!tx_) {
    return MakeClose(kPreconditionFailed, "channel is not transactional", m.kClassId, m.kMethodId);
  }
  auto publishes = std::move(tx_publishes_);
  auto acks = std::move(tx_acks_);
  tx_publishes_.clear();
  tx_acks_.clear();
  for (auto& p : publishes) {
    if (auto e = DoPublish(p.message, p.mandatory)) return e;
  }
  for (auto& a : acks) ApplySettle(TagsFor(a.tag, a.multiple), a.ack, a.requeue);
  Reply(TxCommitOk{});  // held by OnFrame until the persistent messages are synced
  return std::nullopt;
}

std::optional<Close> Channel::Handle(const TxRollback& m) {
  if (!tx_) {
    return MakeClose(kPreconditionFailed, "channel is not transactional", m.kClassId, m.kMethodId);
  }
  tx_publishes_.clear();
  tx_acks_.clear();
  Reply(TxRollbackOk{});
  return std::nullopt;
}

}  // namespace warren::amqp
