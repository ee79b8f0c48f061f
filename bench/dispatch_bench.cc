// Delivery cost per message through Queue::Dispatch and ConsumerSet::Next: the plain path
// (every consumer at the default priority) must cost what it did before consumer priorities.
// Arguments: number of consumers, and 1 to give each consumer its own priority.
// Run: build/release/bench/dispatch_bench
#include <benchmark/benchmark.h>

#include "broker/broker.h"

namespace warren::broker {
namespace {

struct SinkConsumer : Consumer {
  bool CanAccept() const override { return true; }
  void Deliver(const std::shared_ptr<Queue>&, QueueEntry e) override {
    benchmark::DoNotOptimize(e.seq);
  }
  void OnQueueDeleted() override {}
};

void BM_EnqueueDispatch(benchmark::State& state) {
  auto q = std::make_shared<Queue>("q", false, false, std::nullopt, amqp::FieldTable{});
  const int n = static_cast<int>(state.range(0));
  const bool distinct = state.range(1) != 0;
  std::vector<SinkConsumer> consumers(n);
  for (int i = 0; i < n; ++i) q->AddConsumer(&consumers[i], false, distinct ? i : 0);
  auto m = MakeMessage();
  m->routing_key = "q";
  for (auto _ : state) q->Enqueue(m);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnqueueDispatch)->Args({1, 0})->Args({10, 0})->Args({10, 1})->Args({100, 1});

}  // namespace
}  // namespace warren::broker

BENCHMARK_MAIN();
