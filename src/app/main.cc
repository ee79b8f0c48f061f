// warrend: start-up, wiring, signals and shutdown order.
//
// Order: flags/config -> logging -> data dir -> storage + recovery (definitions, queue logs) ->
// listeners -> run until SIGTERM/SIGINT ->
// stop accepting, close connections -> final write + sync of storage -> exit 0.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "amqp/session/session.h"
#include "base/logging.h"
#include "broker/broker.h"
#include "config/config.h"
#include "net/server.h"
#include "storage/store.h"

namespace {

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
  broker_opts.io = &io;
  broker::Broker broker(&store, broker_opts);
  if (auto err = broker.Recover()) {
    std::fprintf(stderr, "warrend: %s\n", err->c_str());
    return 1;
  }
  amqp::SessionConfig session_cfg;
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
    log->info("received {}, shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    amqp.Stop();
    io.stop();
  });
  auto port = amqp.Listen();
  if (!port) {
    std::fprintf(stderr, "warrend: cannot listen on %s:%u: %s\n", cfg.bind.c_str(),
                 static_cast<unsigned>(cfg.amqp_port), port.error().message().c_str());
    return 1;
  }

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
