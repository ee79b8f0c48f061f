// The queue features of issue 5 (docs/queues.md): message TTL with active expiry, x-expires,
// length limits with overflow, dead-lettering and priorities. A queue with none of them (and a
// message without `expiration`) never enters this file: queue.cc's plain path branches here on
// one flags word.

#include <algorithm>
#include <functional>

#include "amqp/codec/methods.h"
#include "base/logging.h"
#include "broker/broker.h"

namespace warren::broker {

storage::MessageRecord RecordOf(const Message& m, uint64_t seq, uint64_t expires_at);

namespace {

auto Log() {
  static auto log = GetLogger("broker");
  return log;
}

}  // namespace

uint8_t PriorityOf(const Message& m) {
  auto p = amqp::DecodeProperties(m.properties());
  if (!p || !p.value().priority) return 0;
  return *p.value().priority;
}

void Queue::Configure(const QueueSettings& settings, Vhost* vhost) {
  settings_ = settings;
  features_ = settings.Features();
  vhost_ = vhost;
  ready_ = ReadyList<QueueEntry>(settings.max_priority);
  timed_ = (features_ & kFeatureTtl) != 0;
  Touch();
  if (features_ & kFeatureExpires) ScheduleWake();
}

void Queue::Touch() { last_used_ = vhost_ != nullptr ? vhost_->Now() : 0; }

uint64_t Queue::BodyBytes(const QueueEntry& e) const {
  return e.message ? e.message->body_size() : 0;
}

QueueEntry Queue::MakeEntry(MessagePtr m, uint64_t now_ms) const {
  QueueEntry e{std::move(m), 0, {}, false};
  if (features_ & kFeaturePriority) {
    e.priority = std::min(e.message->priority, settings_.max_priority);
  }
  std::optional<uint64_t> ttl = settings_.message_ttl_ms;
  if (e.message->expiration_ms) {
    ttl = ttl ? std::min(*ttl, *e.message->expiration_ms) : *e.message->expiration_ms;
  }
  if (ttl) e.expires_at = now_ms + *ttl;
  return e;
}

bool Queue::OverLimit(uint64_t extra_messages, uint64_t extra_bytes) const {
  if (settings_.max_length && message_count() + extra_messages > *settings_.max_length) {
    return true;
  }
  return settings_.max_length_bytes &&
         ready_body_bytes_ + extra_bytes > *settings_.max_length_bytes;
}

bool Queue::EnqueueSpecial(MessagePtr m) {
  if (deleted_) return true;
  const uint64_t now = vhost_ != nullptr ? vhost_->Now() : 1;
  if ((features_ & kFeatureLimit) && settings_.overflow != Overflow::kDropHead &&
      OverLimit(1, m->body_size())) {
    // RabbitMQ: refused before any delivery is tried; reject-publish-dlx dead-letters it too.
    if (settings_.overflow == Overflow::kRejectPublishDlx && (features_ & kFeatureDeadLetter)) {
      vhost_->DeadLetter(*this, *m, DeathReason::kMaxLen);
    }
    return false;
  }
  QueueEntry e = MakeEntry(std::move(m), now);
  e.seq = next_seq_++;
  if (log_ && e.message->delivery_mode == 2) {
    e.loc = log_->Append(RecordOf(*e.message, e.seq, e.expires_at));
  }
  if (features_ & kFeatureLimit) ready_body_bytes_ += BodyBytes(e);
  const uint64_t expires_at = e.expires_at;
  if (expires_at != 0) timed_ = true;
  // Paged entries join the expiry heap when they are read back (docs/queues.md, "Paging").
  if ((paged_ != 0 || resident_bytes_ > budget_) && Spill(e)) {
    Dispatch();
  } else {
    Track(e, true);
    if (expires_at != 0) WatchExpiry(e);
    ready_.PushBack(std::move(e));
    Dispatch();
  }
  if (features_ & kFeatureLimit) DropHeads();
  if (expires_at != 0) {
    // TTL 0: delivered above if a consumer could take it, otherwise it expires now.
    if (expires_at <= now) ExpireDue(now);
    ScheduleWake();
  }
  return true;
}

void Queue::DropHeads() {
  while (!ready_.empty() && OverLimit(0, 0)) DeadLetter(PopReady(), DeathReason::kMaxLen);
}

bool Queue::Expired(const QueueEntry& e) const {
  return e.expires_at != 0 && vhost_ != nullptr && e.expires_at < vhost_->Now();
}

void Queue::WatchExpiry(const QueueEntry& e) {
  expiry_heap_.push_back(Expiry{e.expires_at, e.seq, e.priority});
  std::push_heap(expiry_heap_.begin(), expiry_heap_.end(), std::greater<>());
  // Entries of delivered messages stay until their time: rebuild when they dominate.
  if (expiry_heap_.size() > 2 * ready_.size() + 1024) {
    expiry_heap_.clear();
    ready_.ForEach([this](const QueueEntry& r) {
      if (r.expires_at != 0) expiry_heap_.push_back(Expiry{r.expires_at, r.seq, r.priority});
    });
    if (e.expires_at != 0) expiry_heap_.push_back(Expiry{e.expires_at, e.seq, e.priority});
    std::make_heap(expiry_heap_.begin(), expiry_heap_.end(), std::greater<>());
  }
}

void Queue::ExpireDue(uint64_t now_ms) {
  for (;;) {
    ExpireHeap(now_ms);
    // Paged entries are read back as the resident part empties, and join the heap then.
    if (paged_ == 0 || resident_bytes_ >= kRefillBytes) return;
    PageIn();
    if (expiry_heap_.empty() || expiry_heap_.front().at > now_ms) return;
  }
}

void Queue::ExpireHeap(uint64_t now_ms) {
  while (!expiry_heap_.empty() && expiry_heap_.front().at <= now_ms) {
    std::pop_heap(expiry_heap_.begin(), expiry_heap_.end(), std::greater<>());
    const Expiry x = expiry_heap_.back();
    expiry_heap_.pop_back();
    auto e = ready_.Take(x.seq, x.priority);
    if (!e || e->expires_at != x.at) {
      if (e) ready_.InsertBySeq(std::move(*e));  // requeued with another time: not due
      continue;
    }
    Track(*e, false);
    if (features_ & kFeatureLimit) ready_body_bytes_ -= std::min(ready_body_bytes_, BodyBytes(*e));
    DeadLetter(std::move(*e), DeathReason::kExpired);
  }
}

void Queue::DeadLetter(QueueEntry e, DeathReason reason) {
  bool dead_letter = (features_ & kFeatureDeadLetter) && !deleted_ && vhost_ != nullptr;
  if (dead_letter && !Load(e)) dead_letter = false;
  MessagePtr m = e.message;
  Settle(e);
  if (dead_letter && m) vhost_->DeadLetter(*this, *m, reason);
}

void Queue::Reject(QueueEntry e) {
  if (features_ & kFeatureDeadLetter) {
    DeadLetter(std::move(e), DeathReason::kRejected);
  } else {
    Settle(e);
  }
}

void Queue::ScheduleWake() {
  if (vhost_ == nullptr || deleted_) return;
  uint64_t next = expiry_heap_.empty() ? 0 : expiry_heap_.front().at;
  if ((features_ & kFeatureExpires) && consumers_.empty()) {
    const uint64_t unused_at = last_used_ + *settings_.expires_ms;
    next = next == 0 ? unused_at : std::min(next, unused_at);
  }
  if (next == 0) return;
  if (wake_at_ != 0 && wake_at_ <= next && wake_at_ > vhost_->Now()) return;
  wake_at_ = next;
  vhost_->ScheduleWake(shared_from_this(), next);
}

void Queue::OnTimer(uint64_t now_ms) {
  if (deleted_) return;
  wake_at_ = 0;
  ExpireDue(now_ms);
  if ((features_ & kFeatureExpires) && consumers_.empty() &&
      now_ms >= last_used_ + *settings_.expires_ms) {
    Log()->info("queue '{}' expired after {} ms unused (x-expires)", name_, *settings_.expires_ms);
    vhost_->ExpireQueue(shared_from_this());
    return;
  }
  ScheduleWake();
}

}  // namespace warren::broker
