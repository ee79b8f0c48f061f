// Routing cost with many bindings: a publish should cost what its key costs, not what the
// number of bindings costs. Run: build/release/bench/routing_bench
#include <benchmark/benchmark.h>

#include "broker/broker.h"

namespace warren::broker {
namespace {

void BM_TopicPublish(benchmark::State& state) {
  Vhost v("/");
  ConnectionId c(1);
  v.ExchangeDeclare("t", "topic", false, false, false, false, {});
  const int n = static_cast<int>(state.range(0));
  for (int i = 0; i < n; ++i) {
    std::string q = "q" + std::to_string(i);
    v.QueueDeclare(q, false, false, false, false, {}, c);
    v.QueueBind(q, "t", "stock." + std::to_string(i) + ".*", {}, c);
  }
  auto m = MakeMessage();
  m->exchange = "t";
  const std::string target = std::to_string(n / 2);
  m->routing_key = "stock." + target + ".nyse";
  QueuePtr q = v.FindQueue("q" + target);
  for (auto _ : state) {
    benchmark::DoNotOptimize(v.Publish(m));
    q->Purge();
  }
}
BENCHMARK(BM_TopicPublish)->Arg(10)->Arg(1000)->Arg(10000);

void BM_DirectPublish(benchmark::State& state) {
  Vhost v("/");
  ConnectionId c(1);
  const int n = static_cast<int>(state.range(0));
  for (int i = 0; i < n; ++i) {
    std::string q = "q" + std::to_string(i);
    v.QueueDeclare(q, false, false, false, false, {}, c);
    v.QueueBind(q, "amq.direct", q, {}, c);
  }
  auto m = MakeMessage();
  m->exchange = "amq.direct";
  m->routing_key = "q" + std::to_string(n / 2);
  QueuePtr q = v.FindQueue(m->routing_key);
  for (auto _ : state) {
    benchmark::DoNotOptimize(v.Publish(m));
    q->Purge();
  }
}
BENCHMARK(BM_DirectPublish)->Arg(10)->Arg(10000);

}  // namespace
}  // namespace warren::broker

BENCHMARK_MAIN();
