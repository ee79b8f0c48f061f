#pragma once
// Unacked deliveries of one channel, indexed by delivery tag.
//
// Delivery tags are handed out in increasing order, so a deque whose front is the oldest
// outstanding tag gives O(1) lookup and insertion with no allocation per delivery (the deque
// grows in blocks). Settled entries leave holes that are trimmed from the front; tags that were
// never stored (no-ack deliveries) are holes too.
// Invariant: slots_ is empty or slots_.front() holds a value; live_ counts the values.

#include <cstdint>
#include <deque>
#include <optional>

namespace warren::amqp {

template <typename T>
class TagLog {
 public:
  // REQUIRES: tag is greater than every tag put before.
  void Put(uint64_t tag, T value) {
    if (slots_.empty()) base_ = tag;
    while (base_ + slots_.size() < tag) slots_.emplace_back();
    slots_.emplace_back(std::move(value));
    ++live_;
  }
  bool Contains(uint64_t tag) const { return Slot(tag) != nullptr; }
  T* Find(uint64_t tag) {
    auto* s = const_cast<std::optional<T>*>(Slot(tag));
    return s ? &**s : nullptr;
  }
  std::optional<T> Take(uint64_t tag) {
    auto* s = const_cast<std::optional<T>*>(Slot(tag));
    if (s == nullptr) return std::nullopt;
    std::optional<T> out = std::move(*s);
    s->reset();
    --live_;
    while (!slots_.empty() && !slots_.front()) {
      slots_.pop_front();
      ++base_;
    }
    return out;
  }
  // Calls f(tag) for every outstanding tag <= up_to (0: all), oldest first.
  template <typename F>
  void ForEachTag(uint64_t up_to, F&& f) const {
    for (size_t i = 0; i < slots_.size(); ++i) {
      const uint64_t tag = base_ + i;
      if (up_to != 0 && tag > up_to) break;
      if (slots_[i]) f(tag);
    }
  }
  // The value of the oldest outstanding tag, nullptr if none.
  const T* Oldest() const { return slots_.empty() ? nullptr : &*slots_.front(); }
  size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }

 private:
  const std::optional<T>* Slot(uint64_t tag) const {
    if (slots_.empty() || tag < base_ || tag - base_ >= slots_.size()) return nullptr;
    const auto& s = slots_[tag - base_];
    return s ? &s : nullptr;
  }

  std::deque<std::optional<T>> slots_;
  uint64_t base_ = 0;
  size_t live_ = 0;
};

}  // namespace warren::amqp
