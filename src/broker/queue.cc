#include <algorithm>

#include "base/logging.h"
#include "broker/broker.h"

namespace warren::broker {

namespace {

auto Log() {
  static auto log = GetLogger("broker");
  return log;
}

storage::MessageRecord RecordOf(const Message& m, uint64_t seq) {
  storage::MessageRecord r;
  r.seq = seq;
  r.exchange = m.exchange;
  r.routing_key = m.routing_key;
  r.properties = m.properties();
  r.body = m.body();
  return r;
}

}  // namespace

void Queue::Track(const QueueEntry& e, bool add) {
  if (!e.message) return;
  const uint64_t n = e.message->data.size();
  if (add) {
    resident_bytes_ += n;
  } else {
    resident_bytes_ -= std::min(resident_bytes_, n);
  }
}

QueueEntry Queue::PopReady() {
  QueueEntry e = std::move(ready_.front());
  ready_.pop_front();
  Track(e, false);
  return e;
}

void Queue::Enqueue(MessagePtr m) {
  QueueEntry e{std::move(m), next_seq_++, {}, false};
  if (log_ && e.message->delivery_mode == 2) {
    e.loc = log_->Append(RecordOf(*e.message, e.seq));
    // Over the memory budget with a backlog: keep only the position (read back on delivery).
    if (e.loc.stored() && !ready_.empty() &&
        resident_bytes_ + e.message->data.size() > memory_bytes_) {
      e.message.reset();
    }
  }
  Track(e, true);
  ready_.push_back(std::move(e));
  Dispatch();
}

bool Queue::Load(QueueEntry& e) {
  if (e.message) return true;
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
  auto m = std::make_shared<Message>();
  m->exchange = std::string(r->exchange);
  m->routing_key = std::string(r->routing_key);
  m->SetProperties(r->properties);
  m->data.insert(m->data.end(), r->body.begin(), r->body.end());
  m->delivery_mode = 2;
  e.message = std::move(m);
  return true;
}

void Queue::Restore(const std::vector<storage::RecoveredMessage>& messages, uint64_t max_seq) {
  next_seq_ = std::max(next_seq_, max_seq + 1);
  // Positions only: bodies are read back when delivered. Reading them here, one pread per
  // message, made recovery of 10 M small messages three times slower (bench/README.md).
  for (const auto& rm : messages) {
    ready_.push_back(QueueEntry{nullptr, rm.seq, rm.loc, rm.delivered});
    next_seq_ = std::max(next_seq_, rm.seq + 1);
  }
}

void Queue::Settle(const QueueEntry& e) {
  if (log_ && e.loc.stored()) log_->Ack(e.seq, e.loc);
}

void Queue::Dispatch() {
  // A delivery can cause a cancel or ack that re-enters Dispatch; the outer loop finishes.
  if (dispatching_ || deleted_) return;
  dispatching_ = true;
  auto self = shared_from_this();
  while (!ready_.empty()) {
    Consumer* chosen = consumers_.Next();
    if (chosen == nullptr) break;
    QueueEntry e = PopReady();
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
    auto it = std::lower_bound(ready_.begin(), ready_.end(), e.seq,
                               [](const QueueEntry& a, uint64_t s) { return a.seq < s; });
    ready_.insert(it, std::move(e));
  }
  Dispatch();
}

std::optional<QueueEntry> Queue::Get() {
  while (!ready_.empty()) {
    QueueEntry e = PopReady();
    if (!Load(e)) continue;
    if (log_ && e.loc.stored()) log_->Delivered(e.seq);
    return e;
  }
  return std::nullopt;
}

size_t Queue::Purge() {
  const size_t n = ready_.size();
  for (const auto& e : ready_) Settle(e);
  ready_.clear();
  resident_bytes_ = 0;
  return n;
}

void Queue::AddConsumer(Consumer* c, bool exclusive, int64_t priority) {
  consumers_.Add(c, priority, exclusive);
  had_consumer_ = true;
}

bool Queue::RemoveConsumer(Consumer* c) {
  if (!consumers_.Remove(c)) return false;
  return consumers_.empty() && auto_delete_ && had_consumer_ && !deleted_;
}

size_t Queue::MarkDeleted() {
  deleted_ = true;
  const size_t n = ready_.size();
  ready_.clear();
  resident_bytes_ = 0;
  auto consumers = consumers_.TakeAll();
  for (Consumer* c : consumers) c->OnQueueDeleted();
  return n;
}

}  // namespace warren::broker
