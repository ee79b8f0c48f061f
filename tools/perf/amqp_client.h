#pragma once
// The socket layer of warren-perf: one AMQP 0-9-1 connection with a batching writer and a bulk
// reader, plus the client handshake and synchronous RPCs used during set-up.
//
// Threading: a Conn belongs to one single-threaded io_context; every member is called on it.
// Lifetime: owned by shared_ptr; the writer coroutine holds a reference while it runs.
//
// Writes: callers append whole frames to out() and call Flush(). One writer coroutine drains
// out() with one async_write per batch (double-buffered), so everything appended while a write is
// in flight goes out together in the next one. wake() is cancelled after each write and whenever
// a reader wants to wake a waiting producer.
// Reads: ReadMore() appends one async_read_some's worth (up to kReadBuffer bytes) to the input
// buffer; the caller parses every complete frame in it before reading again.

#include <boost/asio.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "amqp/codec/frame_reader.h"
#include "amqp/codec/frame_writer.h"
#include "amqp/codec/methods.h"
#include "base/buffer.h"

namespace warren::perf {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
inline constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
};
// Accepts "host", "host:port" and "amqp://user:pass@host:port/vhost" (vhost %2F-decoded).
std::optional<Endpoint> ParseUri(const std::string& uri);

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  static constexpr size_t kReadBuffer = 512 * 1024;

  explicit Conn(asio::any_io_executor ex);
  tcp::socket& socket() { return socket_; }
  asio::any_io_executor executor() { return socket_.get_executor(); }

  // --- reading
  asio::awaitable<boost::system::error_code> ReadMore();
  std::span<const std::byte> unparsed() const {
    return {in_.data() + begin_, static_cast<size_t>(end_ - begin_)};
  }
  void Consume(size_t n) { begin_ += n; }

  // --- writing
  ByteBuffer& out() { return out_; }
  void Flush();
  bool writing() const { return writing_; }
  const boost::system::error_code& write_error() const { return write_error_; }
  asio::steady_timer& wake() { return wake_; }
  // Suspends until wake() is cancelled or `deadline` passes.
  asio::awaitable<void> Sleep(asio::steady_timer::time_point deadline);
  uint64_t bytes_written() const { return bytes_written_; }
  void Close();

 private:
  asio::awaitable<void> WriteLoop();

  tcp::socket socket_;
  asio::steady_timer wake_;
  std::vector<std::byte> in_;
  size_t begin_ = 0, end_ = 0;
  ByteBuffer out_, inflight_;
  bool writing_ = false;
  boost::system::error_code write_error_;
  uint64_t bytes_written_ = 0;
};

// A client connection with the handshake and set-up RPCs. Errors (refused connection, a
// channel.close or connection.close from the broker, a protocol error) come back as text.
class Client {
 public:
  explicit Client(asio::any_io_executor ex) : conn_(std::make_shared<Conn>(ex)), reader_(131072) {}

  // TCP connect, protocol header, PLAIN login, tune (frame_max <= 128 KiB, no heartbeats),
  // connection.open and channel 1. Returns an error text or "".
  asio::awaitable<std::string> Open(const Endpoint& ep, const std::string& name);

  // Sends `m` on channel 1 and waits for the next method; error text if it is not a `Reply`.
  template <typename Reply, typename M>
  asio::awaitable<std::string> Rpc(const M& m, Reply* reply = nullptr) {
    amqp::WriteMethod(conn_->out(), 1, m);
    conn_->Flush();
    auto r = co_await ReadMethod();
    if (!r) co_return r.error();
    if (auto* p = std::get_if<Reply>(&*r)) {
      if (reply) *reply = std::move(*p);
      co_return std::string();
    }
    co_return std::string("unexpected reply to ") + M::kName;
  }

  // Sends connection.close and waits (up to 2 s) for close-ok; then closes the socket.
  asio::awaitable<void> Shutdown();

  Conn& conn() { return *conn_; }
  std::shared_ptr<Conn> conn_ptr() { return conn_; }
  const amqp::FrameReader& reader() const { return reader_; }
  uint32_t frame_max() const { return reader_.frame_max(); }

  // The next method frame (heartbeats skipped); channel.close / connection.close become errors.
  struct MethodOrError {
    std::optional<amqp::Method> m;
    std::string err;
    explicit operator bool() const { return m.has_value(); }
    amqp::Method& operator*() { return *m; }
    const std::string& error() const { return err; }
  };
  asio::awaitable<MethodOrError> ReadMethod();

 private:
  std::shared_ptr<Conn> conn_;
  amqp::FrameReader reader_;
};

// Hot-path field extraction, without building a Method: these return false on a short or
// different frame, and the caller falls back to amqp::DecodeMethod.
inline uint32_t MethodKey(std::span<const std::byte> p) {
  return p.size() < 4 ? 0 : LoadU32(p.data());  // class << 16 | method
}
inline constexpr uint32_t kKeyBasicDeliver = (60u << 16) | 60;
inline constexpr uint32_t kKeyBasicAck = (60u << 16) | 80;
inline constexpr uint32_t kKeyBasicNack = (60u << 16) | 120;
inline constexpr uint32_t kKeyBasicPublish = (60u << 16) | 40;
// basic.deliver: consumer-tag shortstr, delivery-tag u64, ...
inline bool ParseDeliverTag(std::span<const std::byte> p, uint64_t* tag) {
  if (p.size() < 5) return false;
  const size_t len = std::to_integer<size_t>(p[4]);
  if (p.size() < 5 + len + 8) return false;
  *tag = LoadU64(p.data() + 5 + len);
  return true;
}
// basic.ack / basic.nack: delivery-tag u64, bits (multiple = bit 0).
inline bool ParseAck(std::span<const std::byte> p, uint64_t* tag, bool* multiple) {
  if (p.size() < 13) return false;
  *tag = LoadU64(p.data() + 4);
  *multiple = (std::to_integer<uint8_t>(p[12]) & 1) != 0;
  return true;
}
// The content-header frame's body size.
inline bool ParseBodySize(std::span<const std::byte> p, uint64_t* size) {
  if (p.size() < 12) return false;
  *size = LoadU64(p.data() + 4);
  return true;
}

}  // namespace warren::perf
