#pragma once
// The seam between the network layer and a protocol session (AMQP today; MQTT, STOMP later).
//
// net owns the socket and one Transport per connection; it creates a ProtocolHandler for each
// accepted connection through a factory given by app/. Both live on the connection's shard
// (one io_context thread) and are only touched there: no locking.
//
// Data flow per loop turn: net reads >= 64 KiB, calls OnData() once with everything it has
// buffered; the handler parses every complete frame and appends replies to its Output(); net
// then writes Output() with one write. Deliveries caused by *another* connection append to this
// handler's Output() and call Transport::RequestFlush(), which schedules one write per turn.

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

#include "base/buffer.h"
#include "base/strong_id.h"

namespace warren {

class Transport {
 public:
  virtual ~Transport() = default;
  // Output() has new bytes; net writes them at the end of this loop turn (coalesced).
  virtual void RequestFlush() = 0;
  // Flush pending output, then close the socket. OnClosed() follows.
  virtual void CloseAfterFlush() = 0;
  // Drop the socket now without flushing (missed heartbeats). OnClosed() follows.
  virtual void Abort() = 0;
  // Back-pressure: stop/resume reading from the socket (memory alarm, blocked publisher).
  virtual void SetReading(bool enabled) = 0;
  virtual ConnectionId id() const = 0;
  virtual const std::string& peer() const = 0;  // "127.0.0.1:54321"
  virtual bool peer_is_loopback() const = 0;
  // Bytes accepted by Output() but not yet written to the socket (slow consumer bound).
  virtual size_t pending_output() const = 0;
};

class ProtocolHandler {
 public:
  virtual ~ProtocolHandler() = default;
  // Bytes read from the socket. Returns how many were consumed; net keeps the rest (an
  // incomplete frame) and passes it again, with more bytes appended, next time.
  virtual size_t OnData(std::span<const std::byte> data) = 0;
  // Bytes to write. net drains it (Consume/Clear) after writing.
  virtual ByteBuffer& Output() = 0;
  // Called about once a second by net on the connection's shard (heartbeats, timeouts).
  virtual void OnTick(std::chrono::steady_clock::time_point now) = 0;
  // The socket is closed (by either side). The handler releases broker resources here:
  // exclusive queues, consumers, unacked deliveries are requeued.
  virtual void OnClosed() = 0;
  // A write completed: pending_output() went down. A handler that stopped handing deliveries
  // to this connection because its write buffer was full resumes here.
  virtual void OnOutputDrained() {}
  // The server is shutting down: say goodbye (AMQP: connection.close 320) and close after
  // flushing. net force-closes whatever is still open after a grace period.
  virtual void OnServerShutdown() {}
};

}  // namespace warren
