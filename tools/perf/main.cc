// warren-perf: an AMQP 0-9-1 load generator (issue 6). See tools/perf/README.md.

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tools/perf/amqp_client.h"
#include "tools/perf/discard_server.h"
#include "tools/perf/histogram.h"
#include "tools/perf/load.h"

namespace warren::perf {
namespace {

std::atomic<bool> g_interrupted{false};

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// Another process's CPU time and resident memory, read from /proc in this process: a shell
// loop that forks a reader every few hundred ms puts millisecond stalls into a latency run on a
// small machine (it raised scenario 7's p99 at 10k msg/s from about 0.4 ms to 2.7 ms here).
class ProcessSampler {
 public:
  explicit ProcessSampler(int pid) : pid_(pid) {
    if (pid_ <= 0) return;
    cpu0_ = CpuTicks();
    rss_base_kb_ = RssKb();
    rss_peak_kb_ = rss_base_kb_;
    ok_ = cpu0_ >= 0 && rss_base_kb_ >= 0;
  }
  bool ok() const { return ok_; }
  int pid() const { return pid_; }
  void Sample() {
    if (ok_) rss_peak_kb_ = std::max(rss_peak_kb_, RssKb());
  }
  void Finish() {
    if (!ok_) return;
    Sample();
    const long long ticks = CpuTicks();
    cpu_s_ = ticks >= cpu0_
                 ? static_cast<double>(ticks - cpu0_) / static_cast<double>(sysconf(_SC_CLK_TCK))
                 : 0;
  }
  double cpu_s() const { return cpu_s_; }
  long long rss_base_kb() const { return rss_base_kb_; }
  long long rss_peak_kb() const { return rss_peak_kb_; }

 private:
  // utime + stime (fields 14 and 15 of /proc/<pid>/stat; the command name may hold spaces).
  long long CpuTicks() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return -1;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream rest(line.substr(paren + 2));
    std::string field;
    long long utime = -1, stime = -1;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoll(field);
      if (i == 15) stime = std::stoll(field);
    }
    return utime >= 0 && stime >= 0 ? utime + stime : -1;
  }
  long long RssKb() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    }
    return -1;
  }

  int pid_;
  bool ok_ = false;
  long long cpu0_ = -1, rss_base_kb_ = -1, rss_peak_kb_ = -1;
  double cpu_s_ = 0;
};

struct Totals {
  uint64_t sent = 0, received = 0, confirmed = 0, nacked = 0;
};

Totals Sum(const std::vector<std::unique_ptr<Worker>>& workers) {
  Totals t;
  for (const auto& w : workers) {
    auto& c = w->counters();
    t.sent += c.sent.load(std::memory_order_relaxed);
    t.received += c.received.load(std::memory_order_relaxed);
    t.confirmed += c.confirmed.load(std::memory_order_relaxed);
    t.nacked += c.nacked.load(std::memory_order_relaxed);
  }
  return t;
}

class Threads {
 public:
  explicit Threads(int n) {
    for (int i = 0; i < n; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
    for (auto& c : contexts_) threads_.emplace_back([ctx = c.get()] { ctx->run(); });
  }
  ~Threads() { Join(); }
  void Join() {
    guards_.clear();
    for (auto& c : contexts_) c->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  asio::io_context& at(size_t i) { return *contexts_[i % contexts_.size()]; }
  std::vector<asio::io_context*> all() {
    std::vector<asio::io_context*> v;
    for (auto& c : contexts_) v.push_back(c.get());
    return v;
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

int Run(Options o, bool self_test, int server_threads, int broker_pid) {
  std::unique_ptr<Threads> server_threads_pool;
  std::unique_ptr<DiscardServer> server;
  if (self_test) {
    server_threads_pool = std::make_unique<Threads>(server_threads);
    server = std::make_unique<DiscardServer>(server_threads_pool->all(), 0, o.size);
    server->Start();
    o.endpoint.host = "127.0.0.1";
    o.endpoint.port = server->port();
    std::printf("self-test: discard server on 127.0.0.1:%u (%d thread%s)\n", server->port(),
                server_threads, server_threads == 1 ? "" : "s");
  }
  const int connections = o.producers + o.consumers;
  int threads = o.threads;
  if (threads <= 0) {
    threads = std::clamp(connections, 1, static_cast<int>(std::thread::hardware_concurrency()));
  }
  Threads pool(threads);

  // Topology, on a connection of its own that also deletes server-named queues at the end.
  Client setup(pool.at(0).get_executor());
  Topology topo;
  std::string err = asio::co_spawn(
                        pool.at(0),
                        [&]() -> asio::awaitable<std::string> {
                          const std::string name = "warren-perf setup";
                          auto e = co_await setup.Open(o.endpoint, name);
                          if (!e.empty()) co_return e;
                          co_return co_await DeclareTopology(setup, o, &topo);
                        },
                        asio::use_future)
                        .get();
  if (!err.empty()) {
    std::fprintf(stderr, "warren-perf: set-up: %s\n", err.c_str());
    return 1;
  }

  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::string> names;
  for (int i = 0; i < o.consumers; ++i) {
    workers.push_back(std::make_unique<Consumer>(pool.at(workers.size()).get_executor(), o, i));
    names.push_back("consumer " + std::to_string(i));
  }
  for (int i = 0; i < o.producers; ++i) {
    workers.push_back(std::make_unique<Producer>(pool.at(workers.size()).get_executor(), o, i));
    names.push_back("producer " + std::to_string(i));
  }
  auto cleanup = [&] {
    if (!topo.delete_at_end.empty()) {
      asio::co_spawn(
          pool.at(0),
          [&]() -> asio::awaitable<void> { co_await DeleteQueues(setup, topo.delete_at_end); },
          asio::use_future)
          .wait_for(std::chrono::seconds(10));
    }
    asio::co_spawn(
        pool.at(0), [&]() -> asio::awaitable<void> { co_await setup.Shutdown(); }, asio::use_future)
        .wait_for(std::chrono::seconds(3));
  };
  {
    std::vector<std::future<std::string>> started;
    for (auto& w : workers) {
      Worker* p = w.get();
      started.push_back(asio::co_spawn(
          p->executor(), [p, &topo] { return p->Start(topo); }, asio::use_future));
    }
    for (size_t i = 0; i < started.size(); ++i) {
      if (auto e = started[i].get(); !e.empty() && err.empty()) err = names[i] + ": " + e;
    }
  }
  if (!err.empty()) {
    std::fprintf(stderr, "warren-perf: %s\n", err.c_str());
    for (auto& w : workers) asio::post(w->executor(), [p = w.get()] { p->Stop(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cleanup();
    return 1;
  }

  // Go. Consumers are subscribed before the first publish.
  ProcessSampler broker(broker_pid);
  if (broker_pid > 0 && !broker.ok()) {
    std::fprintf(stderr, "warren-perf: cannot read /proc/%d: broker CPU and RSS not sampled\n",
                 broker_pid);
  }
  const double cpu0 = CpuSeconds();
  const uint64_t t0 = NowNs();
  std::vector<std::future<std::string>> running;
  for (auto& w : workers) {
    Worker* p = w.get();
    running.push_back(asio::co_spawn(
        p->executor(), [p] { return p->Run(); }, asio::use_future));
  }
  const uint64_t expected = o.pmessages * static_cast<uint64_t>(o.producers) *
                            (o.exchange_type == "fanout" ? static_cast<uint64_t>(o.queues) : 1);
  const bool all_queues_consumed = o.consumers >= o.queues;
  Totals prev;
  uint64_t prev_ns = t0, next_report = t0 + 1'000'000'000ull;
  uint64_t last_progress_ns = t0, last_received = 0;
  int seconds = 0;
  uint64_t ticks = 0;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const uint64_t now = NowNs();
    bool stop = g_interrupted.load();
    if (++ticks % 5 == 0) broker.Sample();  // every 100 ms
    for (size_t i = 0; i < running.size() && err.empty(); ++i) {
      if (running[i].valid() &&
          running[i].wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        auto e = running[i].get();
        err = names[i] + ": " + (e.empty() ? "connection closed" : e);
        stop = true;
      }
    }
    if (now >= next_report) {
      const Totals t = Sum(workers);
      const double dt = static_cast<double>(now - prev_ns) / 1e9;
      ++seconds;
      std::printf("time %3d s | sent %9.0f msg/s | received %9.0f msg/s", seconds,
                  static_cast<double>(t.sent - prev.sent) / dt,
                  static_cast<double>(t.received - prev.received) / dt);
      if (o.confirm > 0) {
        std::printf(" | confirmed %9.0f msg/s | nacked %llu",
                    static_cast<double>(t.confirmed - prev.confirmed) / dt,
                    static_cast<unsigned long long>(t.nacked));
      }
      std::printf("\n");
      std::fflush(stdout);
      prev = t;
      prev_ns = now;
      next_report += 1'000'000'000ull;
    }
    if (o.duration > 0 && now - t0 >= static_cast<uint64_t>(o.duration * 1e9)) stop = true;
    if (o.pmessages > 0 && o.producers > 0) {
      bool producers_done = true;
      for (size_t i = static_cast<size_t>(o.consumers); i < workers.size(); ++i) {
        producers_done &= workers[i]->counters().done_ns.load() != 0;
      }
      const Totals t = Sum(workers);
      if (t.received != last_received) {
        last_received = t.received;
        last_progress_ns = now;
      }
      if (producers_done) {
        if (o.consumers == 0 || (all_queues_consumed && t.received >= expected)) stop = true;
        // Consumers that cannot see every queue, or lost messages: stop when they go quiet.
        if (now - last_progress_ns > 3'000'000'000ull) stop = true;
      }
    }
    if (stop) break;
  }
  const uint64_t t_end = NowNs();
  const double cpu = CpuSeconds() - cpu0;
  broker.Finish();
  const Totals total = Sum(workers);
  for (auto& w : workers) asio::post(w->executor(), [p = w.get()] { p->Stop(); });
  for (size_t i = 0; i < running.size(); ++i) {
    if (!running[i].valid()) continue;
    if (running[i].wait_for(std::chrono::seconds(5)) != std::future_status::ready) continue;
    if (auto e = running[i].get(); !e.empty() && err.empty()) err = names[i] + ": " + e;
  }
  cleanup();
  pool.Join();
  if (server_threads_pool) server_threads_pool->Join();

  // Summary.
  Histogram lat, conf;
  uint64_t last_recv = 0, producers_done = 0;
  for (auto& w : workers) {
    lat.Merge(w->latency());
    conf.Merge(w->confirm_latency());
    last_recv = std::max(last_recv, w->counters().last_recv_ns.load());
    producers_done = std::max(producers_done, w->counters().done_ns.load());
  }
  if (!o.confirm_log.empty()) {
    if (std::FILE* f = std::fopen(o.confirm_log.c_str(), "w")) {
      std::fprintf(f, "at_ns,oldest_sent_ns,newest_sent_ns,count\n");
      for (auto& w : workers) {
        for (const ConfirmEvent& e : w->confirm_events()) {
          std::fprintf(f, "%llu,%llu,%llu,%llu\n", static_cast<unsigned long long>(e.at_ns),
                       static_cast<unsigned long long>(e.oldest_sent_ns),
                       static_cast<unsigned long long>(e.newest_sent_ns),
                       static_cast<unsigned long long>(e.count));
        }
      }
      std::fclose(f);
    } else {
      std::fprintf(stderr, "cannot write %s\n", o.confirm_log.c_str());
    }
  }
  const double elapsed = static_cast<double>(t_end - t0) / 1e9;
  const double send_s =
      producers_done > t0 ? static_cast<double>(producers_done - t0) / 1e9 : elapsed;
  const double recv_s =
      o.pmessages > 0 && last_recv > t0 ? static_cast<double>(last_recv - t0) / 1e9 : elapsed;
  const double send_rate = static_cast<double>(total.sent) / send_s;
  const double recv_rate = static_cast<double>(total.received) / recv_s;
  const double confirm_rate = static_cast<double>(total.confirmed) / send_s;
  const uint64_t msgs = std::max(total.sent, total.received);
  std::printf("summary: %.2f s, %d producer(s), %d consumer(s), %d queue(s), %zu B, %s\n", elapsed,
              o.producers, o.consumers, o.queues, o.size,
              self_test ? "self-test (discard server)" : "");
  std::printf("  sent      %12llu msgs %12.0f msg/s\n", static_cast<unsigned long long>(total.sent),
              send_rate);
  std::printf("  received  %12llu msgs %12.0f msg/s\n",
              static_cast<unsigned long long>(total.received), recv_rate);
  if (o.confirm > 0) {
    std::printf("  confirmed %12llu msgs %12.0f msg/s, nacked %llu\n",
                static_cast<unsigned long long>(total.confirmed), confirm_rate,
                static_cast<unsigned long long>(total.nacked));
  }
  std::printf("  latency          p50 %.1f us  p95 %.1f us  p99 %.1f us  max %.1f us  (%llu)\n",
              Us(lat.Quantile(0.5)), Us(lat.Quantile(0.95)), Us(lat.Quantile(0.99)), Us(lat.max()),
              static_cast<unsigned long long>(lat.count()));
  if (o.confirm > 0) {
    std::printf("  confirm latency  p50 %.1f us  p95 %.1f us  p99 %.1f us  max %.1f us\n",
                Us(conf.Quantile(0.5)), Us(conf.Quantile(0.95)), Us(conf.Quantile(0.99)),
                Us(conf.max()));
  }
  const double cpu_per_msg = msgs > 0 ? cpu * 1e6 / static_cast<double>(msgs) : 0;
  std::printf("  warren-perf CPU  %.2f s (%.3f us per message%s)\n", cpu, cpu_per_msg,
              self_test ? ", discard server included" : "");
  std::string broker_json;
  if (broker.ok()) {
    const double broker_per_msg = msgs > 0 ? broker.cpu_s() * 1e6 / static_cast<double>(msgs) : 0;
    std::printf(
        "  broker (pid %d)   CPU %.2f s (%.3f us per message), RSS %lld KiB at the start, "
        "%lld KiB at the peak\n",
        broker.pid(), broker.cpu_s(), broker_per_msg, broker.rss_base_kb(), broker.rss_peak_kb());
    char buf[200];
    std::snprintf(buf, sizeof(buf),
                  ",\"broker_cpu_s\":%.3f,\"broker_cpu_us_per_msg\":%.3f,\"rss_base_kb\":%lld,"
                  "\"rss_peak_kb\":%lld",
                  broker.cpu_s(), broker_per_msg, broker.rss_base_kb(), broker.rss_peak_kb());
    broker_json = buf;
  }
  if (!err.empty()) std::fprintf(stderr, "warren-perf: %s\n", err.c_str());
  std::printf(
      "{\"sent\":%llu,\"received\":%llu,\"confirmed\":%llu,\"nacked\":%llu,\"duration_s\":%.3f,"
      "\"send_rate\":%.0f,\"recv_rate\":%.0f,\"confirm_rate\":%.0f,\"lat_p50_us\":%.1f,"
      "\"lat_p95_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_max_us\":%.1f,\"confirm_p50_us\":%.1f,"
      "\"confirm_p95_us\":%.1f,\"confirm_p99_us\":%.1f,\"confirm_max_us\":%.1f,"
      "\"perf_cpu_us_per_msg\":%.3f%s,\"error\":%s}\n",
      static_cast<unsigned long long>(total.sent), static_cast<unsigned long long>(total.received),
      static_cast<unsigned long long>(total.confirmed),
      static_cast<unsigned long long>(total.nacked), elapsed, send_rate, recv_rate, confirm_rate,
      Us(lat.Quantile(0.5)), Us(lat.Quantile(0.95)), Us(lat.Quantile(0.99)), Us(lat.max()),
      Us(conf.Quantile(0.5)), Us(conf.Quantile(0.95)), Us(conf.Quantile(0.99)), Us(conf.max()),
      cpu_per_msg, broker_json.c_str(), err.empty() ? "null" : "true");
  std::fflush(stdout);
  return err.empty() ? 0 : 1;
}

int RunDiscardServer(uint16_t port, size_t size, int threads) {
  Threads pool(threads);
  DiscardServer server(pool.all(), port, size);
  server.Start();
  std::printf("discard server on 127.0.0.1:%u; Ctrl-C stops it\n", server.port());
  std::fflush(stdout);
  while (!g_interrupted.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pool.Join();
  std::printf("published %llu, delivered %llu\n",
              static_cast<unsigned long long>(server.published()),
              static_cast<unsigned long long>(server.delivered()));
  return 0;
}

}  // namespace
}  // namespace warren::perf

int main(int argc, char** argv) {
  using warren::perf::Options;
  CLI::App app{"warren-perf: a load generator for any AMQP 0-9-1 broker"};
  Options o;
  std::string uri = "127.0.0.1:5672";
  int fanout = 0;
  bool self_test = false;
  int discard_port = -1;
  int server_threads = 1;
  int broker_pid = 0;
  app.add_option("--uri", uri, "host:port or amqp://user:pass@host:port/vhost")
      ->capture_default_str();
  app.add_option("-x,--producers", o.producers, "producer connections")->capture_default_str();
  app.add_option("-y,--consumers", o.consumers, "consumer connections")->capture_default_str();
  app.add_option("-s,--size", o.size, "message body bytes (>= 8 to measure latency)")
      ->capture_default_str();
  app.add_option("-r,--rate", o.rate, "total publish rate in msg/s, 0 = unlimited")
      ->capture_default_str();
  app.add_option("-u,--queue", o.queue,
                 "queue name pattern, %d = queue index; empty = server-named, deleted at the end");
  app.add_option("--queues", o.queues, "number of queues")->capture_default_str();
  app.add_option("-t,--exchange-type", o.exchange_type, "direct, fanout, topic or headers")
      ->capture_default_str();
  app.add_option("-e,--exchange", o.exchange, "exchange name (default amq.<type>)");
  app.add_option("--fanout", fanout, "N queues bound to a fanout exchange (sets type and queues)");
  app.add_flag("-f,--persistent", o.persistent, "publish with delivery-mode 2");
  app.add_flag("--durable", o.durable, "declare durable queues (and exchange)");
  app.add_option("-c,--confirm", o.confirm, "publisher confirms, at most N unconfirmed; 0 = off")
      ->capture_default_str();
  app.add_option("-q,--prefetch", o.prefetch, "basic.qos prefetch-count; 0 = none")
      ->capture_default_str();
  app.add_flag("-a,--autoack", o.autoack, "consume with no-ack");
  app.add_option("-A,--multi-ack", o.multi_ack, "manual ack: one multiple-ack every N deliveries")
      ->capture_default_str();
  app.add_option("-z,--duration", o.duration, "seconds to run; 0 = until --pmessages")
      ->capture_default_str();
  app.add_option("-C,--pmessages", o.pmessages, "each producer stops after N messages")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "io threads for the connections; 0 = one per core")
      ->capture_default_str();
  app.add_option("--batch", o.batch, "most publishes appended per write")->capture_default_str();
  app.add_option("--confirm-log", o.confirm_log,
                 "write every confirm received to this CSV (at_ns,oldest_sent_ns,newest_sent_ns,"
                 "count; steady clock = CLOCK_MONOTONIC), to line slow ones up with a trace");
  app.add_flag("--self-test", self_test,
               "run against an in-process discard server: the generator's own ceiling");
  app.add_option("--discard-server", discard_port,
                 "only run the discard server on this port (0 = any) until Ctrl-C");
  app.add_option("--server-threads", server_threads, "discard server threads")
      ->capture_default_str();
  app.add_option("--broker-pid", broker_pid,
                 "sample this process's CPU time and RSS (every 100 ms) during the run");
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGINT, [](int) { warren::perf::g_interrupted = true; });
  std::signal(SIGTERM, [](int) { warren::perf::g_interrupted = true; });
  std::signal(SIGPIPE, SIG_IGN);
  if (discard_port >= 0) {
    return warren::perf::RunDiscardServer(static_cast<uint16_t>(discard_port), o.size,
                                          std::max(1, server_threads));
  }
  auto ep = warren::perf::ParseUri(uri);
  if (!ep) {
    std::fprintf(stderr, "warren-perf: bad --uri %s\n", uri.c_str());
    return 2;
  }
  o.endpoint = *ep;
  if (fanout > 0) {
    o.exchange_type = "fanout";
    o.queues = fanout;
  }
  if (o.queues < 1 || o.producers < 0 || o.consumers < 0 || o.producers + o.consumers == 0) {
    std::fprintf(stderr, "warren-perf: need at least one producer or consumer and one queue\n");
    return 2;
  }
  if (o.duration <= 0 && o.pmessages == 0) {
    std::fprintf(stderr, "warren-perf: give --duration or --pmessages\n");
    return 2;
  }
  if (o.autoack && o.multi_ack > 1) {
    std::fprintf(stderr, "warren-perf: --autoack and --multi-ack exclude each other\n");
    return 2;
  }
  if (o.prefetch > 0 && o.multi_ack > o.prefetch && !o.autoack) {
    std::fprintf(stderr, "warren-perf: --multi-ack %d > --prefetch %d: acking every %d\n",
                 o.multi_ack, o.prefetch, o.prefetch);
  }
  o.batch = std::max<size_t>(1, o.batch);
  return warren::perf::Run(o, self_test, std::max(1, server_threads), broker_pid);
}
