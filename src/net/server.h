#pragma once
// TCP listener and per-connection I/O for protocol handlers (base/transport.h).
//
// Threading: everything runs on the io_context given to Server (one shard today; see
// docs/decisions/0001-one-shard-first.md). Not thread-safe; call only from that thread.
//
// Per connection: reads of up to 64 KiB+ (the buffer grows for a partial frame larger than
// it), one OnData() per read with every unconsumed byte, then one write of everything the
// handler put in its Output() (double-buffered: the handler appends to one buffer while the
// other is on the wire). Back-pressure: reading pauses while the handler asked for it
// (SetReading(false)) or while more than `max_pending_output` bytes wait to be written (a
// consumer that stops reading its socket), and resumes when that drains.
//
// Lifetime: a connection lives until its socket is closed; OnClosed() is called exactly once,
// then the handler and connection are destroyed. Server::Stop() closes everything.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/result.h"
#include "base/transport.h"

namespace warren::net {

using HandlerFactory = std::function<std::unique_ptr<ProtocolHandler>(Transport&)>;

struct ServerOptions {
  std::string name = "amqp";  // for log lines
  std::string bind = "0.0.0.0";
  uint16_t port = 5672;  // 0: pick a free port
  // 0: unlimited. At the limit the listener stops accepting until a connection closes (the
  // kernel queues further clients in the listen backlog), as RabbitMQ's connection_max does.
  uint32_t max_connections = 0;
  size_t max_pending_output = 8 * 1024 * 1024;
};

class TcpConnection;

class Server {
 public:
  Server(boost::asio::io_context& io, HandlerFactory factory, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Returns the bound port, or the bind error.
  result<uint16_t> Listen();
  // Stops accepting and closes every connection (handlers get OnClosed()).
  void Stop();
  // Graceful: stops accepting, lets every handler say goodbye (OnServerShutdown) and flush,
  // waits until all connections are closed or `grace` has passed, then Stop() and done().
  void Shutdown(std::chrono::milliseconds grace, std::function<void()> done);
  size_t connection_count() const { return connections_.size(); }

 private:
  friend class TcpConnection;
  void Accept();
  void Tick();
  void Remove(uint64_t id);
  bool AtConnectionLimit() const;
  void AwaitDrained(std::function<void()> done);

  boost::asio::io_context& io_;
  HandlerFactory factory_;
  ServerOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer accept_timer_;
  boost::asio::steady_timer shutdown_timer_;
  std::chrono::steady_clock::time_point shutdown_deadline_{};
  bool accept_backoff_ = false;
  bool accept_paused_ = false;  // at max_connections; Remove() resumes
  std::chrono::steady_clock::time_point last_limit_warning_{};
  std::unordered_map<uint64_t, std::shared_ptr<TcpConnection>> connections_;
  uint64_t next_id_ = 1;
  bool stopped_ = false;
};

}  // namespace warren::net
