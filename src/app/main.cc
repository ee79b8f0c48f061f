// warrend: start-up, wiring, signals and shutdown order.
//
// Order: flags/config -> logging -> data dir -> storage + recovery (definitions, queue logs) ->
// listeners -> run until SIGTERM/SIGINT ->
// stop accepting, close connections -> final write + sync of storage -> exit 0.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include "amqp/session/session.h"
#include "base/logging.h"
#include "base/memory.h"
#include "base/memory_monitor.h"
#include "broker/broker.h"
#include "config/config.h"
#include "net/server.h"
#include "storage/store.h"

namespace {

// File descriptors kept for the data dir, logs and the listener; the rest can be connections.
constexpr uint64_t kReservedFds = 64;

// Raises the soft RLIMIT_NOFILE to the hard limit (RabbitMQ needs the same ulimit tuning) and
// returns the resulting soft limit.
uint64_t RaiseFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? uint64_t{1} << 32 : static_cast<uint64_t>(lim.rlim_cur);
}

int Main(int argc, char** argv) {
  using namespace warren;
  config::Parsed parsed = config::ParseCommandLine(argc, argv);
  if (auto* exit = std::get_if<config::Exit>(&parsed)) {
    FILE* to = exit->code == 0 ? stdout : stderr;
    std::fputs(exit->message.c_str(), to);
    if (!exit->message.empty() && exit->message.back() != '\n') std::fputc('\n', to);
    return exit->code;
  }
  const config::Config& cfg = std::get<config::Run>(parsed).config;
  SetLogLevel(cfg.log_level);
  auto log = GetLogger("app");

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "warrend: cannot create data dir '%s': %s\n", cfg.data_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  // One broker per data dir: a second one would interleave writes to the same segments.
  const std::string lock_path = cfg.data_dir + "/warrend.lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    std::fprintf(stderr, "warrend: data dir '%s' is in use by another warrend (%s is locked)\n",
                 cfg.data_dir.c_str(), lock_path.c_str());
    return 1;
  }
  log->info("warrend 0.1.0 starting; data in {}", std::filesystem::absolute(cfg.data_dir).string());

  boost::asio::io_context io(1);
  net::ServerOptions amqp_opts;
  amqp_opts.name = "amqp";
  amqp_opts.bind = cfg.bind;
  amqp_opts.port = cfg.amqp_port;
  amqp_opts.max_connections = cfg.max_connections;
  amqp_opts.max_pending_output = cfg.write_buffer_bytes;
  const uint64_t fd_limit = RaiseFileLimit();
  const uint64_t fd_budget = fd_limit > 2 * kReservedFds ? fd_limit - kReservedFds : kReservedFds;
  if (cfg.max_connections == 0 || cfg.max_connections > fd_budget) {
    amqp_opts.max_connections = static_cast<uint32_t>(std::min<uint64_t>(fd_budget, UINT32_MAX));
    // Expected with the default (0 = unlimited); worth a warning when configured higher.
    log->log(cfg.max_connections == 0 ? spdlog::level::info : spdlog::level::warn,
             "open file limit is {}: at most {} connections (limits.max_connections = {}, 0 = "
             "unlimited); raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) for more",
             fd_limit, amqp_opts.max_connections, cfg.max_connections);
  } else {
    log->info("open file limit is {}; limits.max_connections = {}", fd_limit, cfg.max_connections);
  }
  storage::StoreOptions store_opts;
  store_opts.data_dir = cfg.data_dir;
  store_opts.segment_bytes = cfg.segment_bytes;
  store_opts.disk_free_limit = cfg.disk_free_limit;
  storage::Store store(storage::RealFs(), store_opts, io);
  if (auto r = store.Open(); !r) {
    std::fprintf(stderr, "warrend: cannot open storage in '%s': %s\n", cfg.data_dir.c_str(),
                 r.error().message().c_str());
    return 1;
  }
  broker::BrokerOptions broker_opts;
  broker_opts.queue_memory_bytes = cfg.queue_memory_bytes;
  broker_opts.max_queues = cfg.max_queues;
  broker_opts.io = &io;
  broker::Broker broker(&store, broker_opts);
  if (auto err = broker.Recover()) {
    std::fprintf(stderr, "warrend: %s\n", err->c_str());
    return 1;
  }
  MemoryAlarm memory_alarm;
  // Above the mark queues page their messages out to disk (paging.cc) as well.
  memory_alarm.AddListener(&broker);
  const uint64_t ram = TotalRamBytes();
  const uint64_t memory_limit =
      cfg.memory_high_watermark_bytes != 0
          ? cfg.memory_high_watermark_bytes
          : static_cast<uint64_t>(static_cast<double>(ram) * cfg.memory_high_watermark);
  log->info("memory high-water mark: {} bytes ({} of {} bytes of RAM)", memory_limit,
            cfg.memory_high_watermark_bytes != 0 ? std::string("absolute")
                                                 : std::to_string(cfg.memory_high_watermark),
            ram);
  MemoryMonitor memory_monitor(io, memory_alarm, memory_limit == 0 ? UINT64_MAX : memory_limit);
  amqp::SessionConfig session_cfg;
  session_cfg.memory_alarm = &memory_alarm;
  session_cfg.handshake_timeout = std::chrono::milliseconds(cfg.handshake_timeout_ms);
  session_cfg.consumer_timeout = std::chrono::milliseconds(cfg.consumer_timeout_ms);
  session_cfg.write_buffer_bytes = cfg.write_buffer_bytes;
  session_cfg.frame_max = cfg.frame_max;
  session_cfg.channel_max = cfg.channel_max;
  session_cfg.heartbeat = cfg.heartbeat;
  session_cfg.max_message_size = cfg.max_message_size;
  net::Server amqp(
      io,
      [&broker, session_cfg](Transport& t) {
        return amqp::MakeAmqpHandler(t, broker, session_cfg);
      },
      amqp_opts);
  // Signals are caught before the listener line is logged: whoever waits for that line may
  // send SIGTERM at once, and it must get the clean shutdown.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& e, int signo) {
    if (e) return;
    log->info("received {}, shutting down; closing {} connections",
              signo == SIGTERM ? "SIGTERM" : "SIGINT", amqp.connection_count());
    memory_monitor.Stop();
    // Clients get connection.close 320 CONNECTION_FORCED first, as from RabbitMQ.
    amqp.Shutdown(std::chrono::seconds(3), [&io] { io.stop(); });
  });
  auto port = amqp.Listen();
  if (!port) {
    std::fprintf(stderr, "warrend: cannot listen on %s:%u: %s\n", cfg.bind.c_str(),
                 static_cast<unsigned>(cfg.amqp_port), port.error().message().c_str());
    return 1;
  }

  memory_monitor.Start();
  io.run();
  // Connections closed by Stop() are released by handlers still queued: run them now, while the
  // broker and the store they point to are alive (not in io_context's destructor).
  io.restart();
  io.poll();
  store.Close();  // what the last turn appended is written and synced
  io.restart();
  io.poll();
  log->info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
