#include <algorithm>

#include "broker/broker.h"

namespace warren::broker {

void Queue::Enqueue(MessagePtr m) {
  ready_.push_back(QueueEntry{std::move(m), next_seq_++, false});
  Dispatch();
}

void Queue::Dispatch() {
  // A delivery can cause a cancel or ack that re-enters Dispatch; the outer loop finishes.
  if (dispatching_ || deleted_) return;
  dispatching_ = true;
  auto self = shared_from_this();
  while (!ready_.empty() && !consumers_.empty()) {
    const size_t n = consumers_.size();
    Consumer* chosen = nullptr;
    for (size_t i = 0; i < n; ++i) {
      const size_t idx = (next_consumer_ + i) % n;
      if (consumers_[idx]->CanAccept()) {
        chosen = consumers_[idx];
        next_consumer_ = (idx + 1) % n;
        break;
      }
    }
    if (chosen == nullptr) break;
    QueueEntry e = std::move(ready_.front());
    ready_.pop_front();
    chosen->Deliver(self, std::move(e));
  }
  dispatching_ = false;
}

void Queue::Requeue(std::vector<QueueEntry> entries) {
  if (deleted_) return;
  for (auto& e : entries) {
    e.redelivered = true;
    auto it = std::lower_bound(ready_.begin(), ready_.end(), e.seq,
                               [](const QueueEntry& a, uint64_t s) { return a.seq < s; });
    ready_.insert(it, std::move(e));
  }
  Dispatch();
}

std::optional<QueueEntry> Queue::Get() {
  if (ready_.empty()) return std::nullopt;
  QueueEntry e = std::move(ready_.front());
  ready_.pop_front();
  return e;
}

size_t Queue::Purge() {
  const size_t n = ready_.size();
  ready_.clear();
  return n;
}

void Queue::AddConsumer(Consumer* c, bool exclusive) {
  consumers_.push_back(c);
  had_consumer_ = true;
  if (exclusive) exclusive_consumer_ = true;
}

bool Queue::RemoveConsumer(Consumer* c) {
  auto it = std::find(consumers_.begin(), consumers_.end(), c);
  if (it == consumers_.end()) return false;
  consumers_.erase(it);
  if (next_consumer_ >= consumers_.size()) next_consumer_ = 0;
  if (consumers_.empty()) exclusive_consumer_ = false;
  return consumers_.empty() && auto_delete_ && had_consumer_ && !deleted_;
}

size_t Queue::MarkDeleted() {
  deleted_ = true;
  const size_t n = ready_.size();
  ready_.clear();
  auto consumers = std::move(consumers_);
  consumers_.clear();
  for (Consumer* c : consumers) c->OnQueueDeleted();
  return n;
}

}  // namespace warren::broker
