// Enqueue + dequeue cost per message (Queue::Enqueue then Queue::Get, 1,000 at a time, no
// consumers): a plain queue, a TTL queue (x-message-ttl), a plain queue receiving messages with
// `expiration`, and a priority queue (x-max-priority 10, priorities 0..9). Issue 5: priorities
// and TTLs must not slow the plain path. docs/queues.md has the numbers.
// Built with -DQUEUE_BENCH_PLAIN_ONLY it compiles against main before issue 5 (plain case only).
// Run: build/release/bench/queue_bench
#include <benchmark/benchmark.h>

#include "broker/broker.h"

namespace warren::broker {
namespace {

constexpr int kBatch = 1000;

MessagePtr NewMessage(uint8_t priority, std::optional<uint64_t> expiration) {
#ifdef QUEUE_BENCH_PLAIN_ONLY
  auto m = std::make_shared<Message>();
#else
  auto m = MakeMessage();
#endif
  m->routing_key = "q";
  m->data.assign(64, std::byte{'x'});
  (void)priority;
  (void)expiration;
#ifndef QUEUE_BENCH_PLAIN_ONLY
  m->priority = priority;
  m->expiration_ms = expiration;
#endif
  return m;
}

void Run(benchmark::State& state, const std::shared_ptr<Queue>& q,
         const std::vector<MessagePtr>& messages) {
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) q->Enqueue(messages[i % messages.size()]);
    for (int i = 0; i < kBatch; ++i) benchmark::DoNotOptimize(q->Get());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

std::shared_ptr<Queue> NewQueue() {
  return std::make_shared<Queue>("q", false, false, std::nullopt, amqp::FieldTable{});
}

void BM_Plain(benchmark::State& state) { Run(state, NewQueue(), {NewMessage(0, std::nullopt)}); }
BENCHMARK(BM_Plain);

#ifndef QUEUE_BENCH_PLAIN_ONLY
// The vhost's clock is not ticked: nothing expires, the bench measures the bookkeeping.
void BM_QueueTtl(benchmark::State& state) {
  Vhost vhost("/");
  auto q = NewQueue();
  QueueSettings s;
  s.message_ttl_ms = 60000;
  q->Configure(s, &vhost);
  Run(state, q, {NewMessage(0, std::nullopt)});
}
BENCHMARK(BM_QueueTtl);

void BM_MessageExpiration(benchmark::State& state) {
  Vhost vhost("/");
  auto q = NewQueue();
  q->Configure(QueueSettings{}, &vhost);
  Run(state, q, {NewMessage(0, 60000)});
}
BENCHMARK(BM_MessageExpiration);

void BM_Priority(benchmark::State& state) {
  Vhost vhost("/");
  auto q = NewQueue();
  QueueSettings s;
  s.max_priority = 10;
  q->Configure(s, &vhost);
  std::vector<MessagePtr> messages;
  for (uint8_t p = 0; p < 10; ++p) messages.push_back(NewMessage(p, std::nullopt));
  Run(state, q, messages);
}
BENCHMARK(BM_Priority);
#endif

}  // namespace
}  // namespace warren::broker

BENCHMARK_MAIN();
