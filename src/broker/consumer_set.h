#pragma once
// Which of a queue's consumers gets the next message. Owned by a Queue; Queue::Dispatch asks
// Next() once per delivery.
//
// Rules (RabbitMQ 3.10, docs/consumers.md):
// - Consumer priorities (`x-priority` on basic.consume, default 0): a message goes to the
//   highest-priority consumer that can take it (Consumer::CanAccept); lower ones get messages
//   only while every higher one is blocked. Equal priorities share round-robin.
// - Single active consumer (queue argument `x-single-active-consumer`): only the active consumer
//   gets messages, even while it has no credit. The first registered consumer becomes active;
//   when it goes, the highest-priority remaining one (earliest registered among equals) takes
//   over, as RabbitMQ 3.10 classic queues do.
// - An exclusive consumer is alone on its queue (the vhost checks before Add).
//
// Cost: consumers are grouped by priority, highest first. With all priorities equal (the common
// case) there is one group and Next() is the plain round-robin scan: O(1) while the next
// consumer has credit, O(consumers) when all are blocked. No allocation in Next().
// Threading: the owning queue's shard only. Consumers are not owned; they must be removed before
// they die.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "amqp/codec/field_table.h"

namespace warren::broker {

class Consumer;

class ConsumerSet {
 public:
  void set_single_active(bool on) { single_active_ = on; }
  bool single_active() const { return single_active_; }

  void Add(Consumer* c, int64_t priority, bool exclusive);
  // False if `c` was not here.
  bool Remove(Consumer* c);
  // The consumer for the next message, or nullptr if none can take one now.
  Consumer* Next();
  // Empties the set (queue deletion); returns the consumers in priority order.
  std::vector<Consumer*> TakeAll();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool has_exclusive() const { return exclusive_; }
  // Single active consumer only: the active one (nullptr when empty or not in that mode).
  Consumer* active() const { return active_; }

 private:
  struct Group {
    int64_t priority = 0;
    std::vector<Consumer*> members;  // registration order
    size_t next = 0;                 // round-robin cursor
  };
  std::vector<Group> groups_;  // highest priority first, never an empty group
  size_t size_ = 0;
  bool exclusive_ = false;
  bool single_active_ = false;
  Consumer* active_ = nullptr;
};

// The `x-priority` argument of basic.consume (0 when absent). On a non-integer value returns
// RabbitMQ's explanation, e.g. `invalid arg 'x-priority' for queue 'q' in vhost '/': "expected
// integer, got longstr"`; `queue_text` is "queue 'q' in vhost '/'".
std::optional<std::string> ConsumerPriority(const amqp::FieldTable& args,
                                            const std::string& queue_text, int64_t& priority);
// Validates `x-single-active-consumer` (a bool) in queue.declare arguments; sets `on`.
std::optional<std::string> SingleActiveConsumerArg(const amqp::FieldTable& args,
                                                   const std::string& queue_text, bool& on);

}  // namespace warren::broker
