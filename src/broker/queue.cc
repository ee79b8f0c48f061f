#include <algorithm>

#include "base/logging.h"
#include "broker/broker.h"

namespace warren::broker {

namespace {

auto Log() {
  static auto log = GetLogger("broker");
  return log;
}

}  // namespace

storage::MessageRecord RecordOf(const Message& m, uint64_t seq, uint64_t expires_at) {
  storage::MessageRecord r;
  r.seq = seq;
  r.expires_at = expires_at;
  r.exchange = m.exchange;
  r.routing_key = m.routing_key;
  r.properties = m.properties();
  r.body = m.body();
  return r;
}

uint64_t Queue::EntryCost(const QueueEntry& e) {
  // Its slot, and the message object with its bytes (counted whole even when other queues
  // share it); 32 for the allocator's overhead.
  return sizeof(QueueEntry) + (e.message ? sizeof(Message) + 32 + e.message->data.size() : 0);
}

void Queue::Track(const QueueEntry& e, bool add) {
  const uint64_t n = EntryCost(e);
  if (add) {
    resident_bytes_ += n;
  } else {
    resident_bytes_ -= std::min(resident_bytes_, n);
  }
}

QueueEntry Queue::PopReady() {
  QueueEntry e = ready_.PopFront();
  Track(e, false);
  if (features_ & kFeatureLimit) ready_body_bytes_ -= std::min(ready_body_bytes_, BodyBytes(e));
  if (paged_ != 0 && resident_bytes_ < kRefillBytes) [[unlikely]] {
    PageIn();
  }
  return e;
}

bool Queue::Enqueue(MessagePtr m) {
  // Queues with TTL, limits, priorities or a DLX, and messages with `expiration`, take
  // EnqueueSpecial; the plain path below stays what it was (one branch).
  if (features_ != 0 || m->expiration_ms) [[unlikely]] {
    return EnqueueSpecial(std::move(m));
  }
  QueueEntry e{std::move(m), next_seq_++, {}, false};
  if (log_ && e.message->delivery_mode == 2) {
    e.loc = log_->Append(RecordOf(*e.message, e.seq, 0));
  }
  // Over the memory budget with a backlog, or paging already: the entry waits on disk.
  if (paged_ != 0 || resident_bytes_ > budget_) [[unlikely]] {
    if (Spill(e)) {
      Dispatch();
      return true;
    }
  }
  Track(e, true);
  ready_.PushBack(std::move(e));
  Dispatch();
  return true;
}

bool Queue::ReadBack(QueueEntry& e) {
  auto payload = log_ ? log_->Read(e.loc)
                      : result<std::vector<std::byte>>(std::make_error_code(std::errc::io_error));
  std::optional<storage::MessageRecord> r;
  if (payload) r = storage::DecodeMessage(payload.value());
  if (!r) {
    Log()->error("queue '{}': message {} cannot be read back from {} (segment {}, offset {}): {}",
                 name_, e.seq, log_ ? log_->dir() : "?", e.loc.segment, e.loc.offset,
                 payload ? "bad record" : payload.error().message());
    return false;
  }
  auto m = MakeMessage();
  m->exchange = std::string(r->exchange);
  m->routing_key = std::string(r->routing_key);
  m->SetProperties(r->properties);
  m->data.insert(m->data.end(), r->body.begin(), r->body.end());
  m->delivery_mode = 2;
  if (features_ & kFeaturePriority) m->priority = PriorityOf(*m);
  e.message = std::move(m);
  return true;
}

void Queue::Restore(const std::vector<storage::RecoveredMessage>& messages, uint64_t max_seq) {
  next_seq_ = std::max(next_seq_, max_seq + 1);
  // Positions only: bodies are read back when delivered. Reading them here, one pread per
  // message, made recovery of 10 M small messages three times slower (bench/README.md).
  // Priority and length-bytes queues read each message back: the priority and the body size
  // are in the record, not in the position.
  const bool load = features_ & (kFeaturePriority | kFeatureLimit);
  for (const auto& rm : messages) {
    next_seq_ = std::max(next_seq_, rm.seq + 1);
    QueueEntry e{nullptr, rm.seq, rm.loc, rm.delivered};
    e.expires_at = rm.expires_at;
    if (load) {
      if (!Load(e)) continue;
      e.priority = std::min(e.message->priority, settings_.max_priority);
      if (features_ & kFeatureLimit) ready_body_bytes_ += BodyBytes(e);
    }
    Track(e, true);
    if (e.expires_at != 0) {
      timed_ = true;
      WatchExpiry(e);
    }
    ready_.PushBack(std::move(e));
  }
  Touch();
  ScheduleWake();
}

void Queue::Settle(const QueueEntry& e) {
  if (log_ && e.loc.stored()) log_->Ack(e.seq, e.loc);
}

void Queue::DispatchReady() {
  // A delivery can cause a cancel or ack that re-enters Dispatch; the outer loop finishes.
  if (dispatching_ || deleted_) return;
  dispatching_ = true;
  auto self = shared_from_this();
  while (!ready_.empty()) {
    Consumer* chosen = consumers_.Next();
    if (chosen == nullptr) break;
    QueueEntry e = PopReady();
    if (timed_ && Expired(e)) [[unlikely]] {
      DeadLetter(std::move(e), DeathReason::kExpired);
      continue;
    }
    if (!Load(e)) continue;
    if (log_ && e.loc.stored()) log_->Delivered(e.seq);
    chosen->Deliver(self, std::move(e));
  }
  dispatching_ = false;
}

void Queue::Requeue(std::vector<QueueEntry> entries) {
  if (deleted_) return;
  for (auto& e : entries) {
    e.redelivered = true;
    Track(e, true);
    if (features_ & kFeatureLimit) ready_body_bytes_ += BodyBytes(e);
    if (e.expires_at != 0) WatchExpiry(e);
    ready_.InsertBySeq(std::move(e));
  }
  Dispatch();
  // RabbitMQ drops heads after a requeue too (the requeued message can be the one dropped).
  if ((features_ & kFeatureLimit) && settings_.overflow == Overflow::kDropHead) DropHeads();
  if (timed_) ScheduleWake();
}

std::optional<QueueEntry> Queue::Get() {
  if (features_ & kFeatureExpires) Touch();
  while (!ready_.empty()) {
    QueueEntry e = PopReady();
    if (timed_ && Expired(e)) [[unlikely]] {
      DeadLetter(std::move(e), DeathReason::kExpired);
      continue;
    }
    if (!Load(e)) continue;
    if (log_ && e.loc.stored()) log_->Delivered(e.seq);
    return e;
  }
  return std::nullopt;
}

size_t Queue::Purge() {
  const size_t n = message_count();
  ready_.ForEach([this](const QueueEntry& e) { Settle(e); });
  ready_.Clear();
  DropPages();
  resident_bytes_ = 0;
  ready_body_bytes_ = 0;
  return n;
}

void Queue::AddConsumer(Consumer* c, bool exclusive, int64_t priority) {
  consumers_.Add(c, priority, exclusive);
  had_consumer_ = true;
  if (features_ & kFeatureExpires) Touch();
}

bool Queue::RemoveConsumer(Consumer* c) {
  if (!consumers_.Remove(c)) return false;
  if ((features_ & kFeatureExpires) && consumers_.empty()) {
    Touch();
    ScheduleWake();
  }
  return consumers_.empty() && auto_delete_ && had_consumer_ && !deleted_;
}

size_t Queue::MarkDeleted() {
  deleted_ = true;
  const size_t n = message_count();
  ready_.Clear();
  pages_.clear();
  paged_ = 0;
  resident_bytes_ = 0;
  ready_body_bytes_ = 0;
  expiry_heap_.clear();
  auto consumers = consumers_.TakeAll();
  for (Consumer* c : consumers) c->OnQueueDeleted();
  return n;
}

}  // namespace warren::broker
