#pragma once
// Producers, consumers and the topology they need, as coroutines over amqp_client.h.
//
// Threading: each Producer/Consumer lives on one single-threaded io_context. Its counters are
// relaxed atomics written only by that thread and read once a second by the reporter; its
// histograms are read only after its io_context has stopped.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "tools/perf/amqp_client.h"
#include "tools/perf/histogram.h"

namespace warren::perf {

struct Options {
  Endpoint endpoint;
  int producers = 1;
  int consumers = 1;
  size_t size = 16;   // body bytes; the first 8 carry the send time when size >= 8
  double rate = 0;    // total msg/s over all producers; 0 = unlimited
  std::string queue;  // name pattern ("%d" = index); empty = server-named queues
  int queues = 1;
  std::string exchange_type = "direct";
  std::string exchange;     // empty = amq.<type> (exists on every broker)
  bool persistent = false;  // delivery-mode 2
  bool durable = false;     // durable queues (and a declared exchange)
  int confirm = 0;          // publisher confirms with this many unconfirmed at most; 0 = off
  int prefetch = 0;         // basic.qos prefetch-count; 0 = no qos
  bool autoack = false;
  int multi_ack = 1;        // manual ack: one basic.ack(multiple) every N deliveries
  double duration = 10;     // seconds; 0 = until --pmessages is reached
  uint64_t pmessages = 0;   // per producer; 0 = no limit
  int threads = 0;          // io_context threads; 0 = min(connections, cores)
  size_t batch = 256;       // most publishes appended per write
  std::string confirm_log;  // CSV of every confirm received (--confirm-log); empty = none
};

// One basic.ack/nack a producer received (kept only with --confirm-log): when it was read and
// the send times of the oldest and newest publish it newly confirmed (steady clock, ns).
struct ConfirmEvent {
  uint64_t at_ns = 0;
  uint64_t oldest_sent_ns = 0;
  uint64_t newest_sent_ns = 0;
  uint64_t count = 0;
};

inline uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Counters on their own cache line: one writer thread, many readers.
struct alignas(64) Counters {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> confirmed{0};
  std::atomic<uint64_t> nacked{0};
  std::atomic<uint64_t> last_recv_ns{0};
  std::atomic<uint64_t> done_ns{0};  // producer: when --pmessages were sent (and confirmed)
  void Add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// Queue and exchange names resolved by the topology step.
struct Topology {
  std::string exchange;                    // where producers publish ("" = default exchange)
  std::vector<std::string> queues;         // consumer i reads queues[i % n]
  std::vector<std::string> keys;           // producer i publishes with keys[i % n]
  std::vector<std::string> delete_at_end;  // server-named queues
};

// Declares the exchange (unless amq.*), the queues and their bindings. Error text or "".
asio::awaitable<std::string> DeclareTopology(Client& c, const Options& o, Topology* t);
asio::awaitable<void> DeleteQueues(Client& c, const std::vector<std::string>& queues);

class Worker {
 public:
  Worker(asio::any_io_executor ex, const Options& o, int index)
      : client_(ex), opts_(o), index_(index) {}
  virtual ~Worker() = default;
  // Opens the connection and sets up the channel; error text or "".
  virtual asio::awaitable<std::string> Start(const Topology& t) = 0;
  // Runs until Stop(); returns an error text or "".
  virtual asio::awaitable<std::string> Run() = 0;
  // Posted on the worker's executor: stop producing/acking and close the connection.
  virtual void Stop() = 0;
  Counters& counters() { return counters_; }
  Histogram& latency() { return latency_; }
  Histogram& confirm_latency() { return confirm_latency_; }
  const std::vector<ConfirmEvent>& confirm_events() const { return confirm_events_; }
  asio::any_io_executor executor() { return client_.conn().executor(); }

 protected:
  // Reads and dispatches frames until connection.close-ok or an error.
  asio::awaitable<std::string> ReadLoop();
  virtual void OnFrame(const amqp::Frame& f) = 0;
  void BeginClose();

  Client client_;
  const Options& opts_;
  int index_;
  Counters counters_;
  Histogram latency_;
  Histogram confirm_latency_;
  std::vector<ConfirmEvent> confirm_events_;
  bool closing_ = false;
  bool closed_ = false;
  uint64_t now_ns_ = 0;  // when the bytes being parsed were read
  std::string error_;
};

class Producer : public Worker {
 public:
  using Worker::Worker;
  asio::awaitable<std::string> Start(const Topology& t) override;
  asio::awaitable<std::string> Run() override;
  void Stop() override;

 private:
  asio::awaitable<void> PublishLoop();
  void OnFrame(const amqp::Frame& f) override;
  void AppendBatch(size_t n);
  void Confirm(uint64_t tag, bool multiple, bool ack);

  ByteBuffer template_;  // one publish: method + header + body frames
  size_t stamp_at_ = 0;  // offset of the body's first byte in template_
  uint64_t sent_ = 0;
  uint64_t next_seq_ = 1;                // confirm sequence of the next publish
  std::deque<uint64_t> unconfirmed_ns_;  // send times of seq first_unconfirmed_ ...
  uint64_t first_unconfirmed_ = 1;
};

class Consumer : public Worker {
 public:
  using Worker::Worker;
  asio::awaitable<std::string> Start(const Topology& t) override;
  asio::awaitable<std::string> Run() override;
  void Stop() override;

 private:
  void OnFrame(const amqp::Frame& f) override;
  void Delivered(uint64_t sent_ns);

  int ack_every_ = 1;
  uint64_t last_tag_ = 0;
  uint64_t unacked_ = 0;
  // Content being assembled: the body size left and whether the stamp was read yet.
  uint64_t body_left_ = 0;
  bool in_content_ = false;
  bool want_stamp_ = false;
  uint64_t stamp_ = 0;
};

}  // namespace warren::perf
