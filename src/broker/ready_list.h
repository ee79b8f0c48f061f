#pragma once
// A queue's ready messages: delivered highest priority first, then in arrival order (seq).
// Without priorities (max_priority 0) it is one deque and every operation takes the level-0
// branch first, so a plain queue pays one predictable branch. With x-max-priority N it keeps
// N+1 deques, one per priority, and `top_` is the highest level that may be non-empty.
//
// Value type; the owning Queue's thread only.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace warren::broker {

template <typename Entry>
class ReadyList {
 public:
  explicit ReadyList(uint8_t max_priority = 0) : high_(max_priority) {}

  bool empty() const { return base_.empty() && high_size_ == 0; }
  size_t size() const { return base_.size() + high_size_; }
  uint8_t max_priority() const { return static_cast<uint8_t>(high_.size()); }

  // Appends at the back of its priority level (entry.priority must be <= max_priority()).
  void PushBack(Entry&& e) {
    if (e.priority == 0) [[likely]] {
      base_.push_back(std::move(e));
      return;
    }
    ++high_size_;
    top_ = std::max(top_, e.priority);
    high_[e.priority - 1].push_back(std::move(e));
  }

  // Highest priority, oldest first. REQUIRES: !empty().
  Entry& Front() {
    if (top_ == 0) [[likely]]
      return base_.front();
    return Level(Top()).front();
  }
  Entry PopFront() {
    if (top_ == 0) [[likely]] {
      Entry e = std::move(base_.front());
      base_.pop_front();
      return e;
    }
    const uint8_t p = Top();
    auto& l = Level(p);
    Entry e = std::move(l.front());
    l.pop_front();
    if (p != 0) --high_size_;
    return e;
  }

  // Puts an entry back at its place by seq within its level (requeue).
  void InsertBySeq(Entry&& e) {
    auto& l = Level(e.priority);
    if (e.priority > top_) top_ = e.priority;
    auto it = std::lower_bound(l.begin(), l.end(), e.seq,
                               [](const Entry& a, uint64_t s) { return a.seq < s; });
    if (e.priority != 0) ++high_size_;
    l.insert(it, std::move(e));
  }

  // Removes the entry with this seq at this priority, if it is still ready.
  std::optional<Entry> Take(uint64_t seq, uint8_t priority) {
    if (priority > max_priority()) return std::nullopt;
    auto& l = Level(priority);
    auto it = std::lower_bound(l.begin(), l.end(), seq,
                               [](const Entry& a, uint64_t s) { return a.seq < s; });
    if (it == l.end() || it->seq != seq) return std::nullopt;
    Entry e = std::move(*it);
    l.erase(it);
    if (priority != 0) --high_size_;
    return e;
  }

  // Removes the entries after the first `keep` (arrival order; queues without priorities only)
  // and hands them to `f` in order.
  template <typename F>
  void TakeTail(size_t keep, F&& f) {
    if (keep >= base_.size()) return;
    for (auto it = base_.begin() + static_cast<ptrdiff_t>(keep); it != base_.end(); ++it) {
      f(std::move(*it));
    }
    base_.erase(base_.begin() + static_cast<ptrdiff_t>(keep), base_.end());
  }

  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& e : base_) f(e);
    for (const auto& l : high_) {
      for (const auto& e : l) f(e);
    }
  }

  void Clear() {
    base_.clear();
    for (auto& l : high_) l.clear();
    high_size_ = 0;
    top_ = 0;
  }

 private:
  std::deque<Entry>& Level(uint8_t p) { return p == 0 ? base_ : high_[p - 1]; }
  // The highest non-empty level (lowers top_ past emptied levels).
  uint8_t Top() {
    if (top_ == 0) [[likely]]
      return 0;
    while (top_ > 0 && high_[top_ - 1].empty()) --top_;
    return top_;
  }

  std::deque<Entry> base_;
  std::vector<std::deque<Entry>> high_;  // priorities 1..max
  uint8_t top_ = 0;
  size_t high_size_ = 0;  // entries above priority 0
};

}  // namespace warren::broker
