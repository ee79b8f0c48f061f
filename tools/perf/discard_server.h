#pragma once
// A discard server: the smallest AMQP 0-9-1 peer that lets warren-perf run at full speed, so
// that warren-perf's own ceiling can be measured (--self-test, --discard-server).
//
// It answers the handshake and every set-up method with its -ok, drops publishes (confirming
// them with one basic.ack(multiple) per read when confirms are on), ignores acks, and feeds
// each consumer an endless stream of deliveries of `size` bytes stamped with the send time.
// Nothing is routed or stored: it measures the generator and the loopback socket, not a broker.
//
// Threading: the acceptor runs on the first io_context; connections are spread over all of
// them round-robin. Counters are relaxed atomics.

#include <atomic>
#include <cstdint>
#include <vector>

#include "tools/perf/amqp_client.h"

namespace warren::perf {

class DiscardServer {
 public:
  // Binds 127.0.0.1:port (0 = any free port).
  DiscardServer(std::vector<asio::io_context*> contexts, uint16_t port, size_t size);
  uint16_t port() const { return port_; }
  void Start();
  uint64_t published() const { return published_.load(std::memory_order_relaxed); }
  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }

 private:
  asio::awaitable<void> Accept();
  asio::awaitable<void> Session(std::shared_ptr<Conn> conn);
  asio::awaitable<void> Firehose(std::shared_ptr<Conn> conn, std::shared_ptr<bool> stop,
                                 uint16_t channel, std::string tag);

  std::vector<asio::io_context*> contexts_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  size_t size_;
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> delivered_{0};
};

}  // namespace warren::perf
