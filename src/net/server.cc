#include "net/server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <vector>

#include "base/logging.h"
#include "base/memory.h"

namespace warren::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
// Reads ask for `read_chunk_` bytes: it starts small, so an idle connection costs a few KiB,
// doubles while reads fill it (a busy publisher soon reads 64 KiB at a time) and halves again,
// releasing the memory, when the connection goes quiet.
constexpr size_t kMinReadChunk = 4 * 1024;
constexpr size_t kMaxReadChunk = 64 * 1024;

const std::shared_ptr<spdlog::logger>& Log() {
  static const std::shared_ptr<spdlog::logger> log = GetLogger("net");
  return log;
}

bool IsLoopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  }
  return false;
}
}  // namespace

class TcpConnection : public Transport, public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(Server& server, tcp::socket socket, uint64_t id)
      : server_(server), socket_(std::move(socket)), id_(id) {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) {
      peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
      loopback_ = IsLoopback(ep.address());
    } else {
      peer_ = "unknown";
    }
    socket_.set_option(tcp::no_delay(true), ec);
  }

  void Start(std::unique_ptr<ProtocolHandler> handler) {
    handler_ = std::move(handler);
    MaybeRead();
  }

  // Returns true if it gave large buffers back.
  bool Tick(std::chrono::steady_clock::time_point now) {
    if (closed_) return false;
    handler_->OnTick(now);
    const bool released = !read_since_tick_ && !closed_ && ShrinkWriteBuffers();
    read_since_tick_ = false;
    return released;
  }

  // Transport.
  void RequestFlush() override {
    if (closed_ || flush_posted_ || writing_) return;
    flush_posted_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->Flush();
    });
  }
  void CloseAfterFlush() override {
    if (closed_) return;
    close_after_flush_ = true;
    reading_enabled_ = false;
    RequestFlush();
  }
  void Abort() override { Shutdown(); }
  void SetReading(bool enabled) override {
    reading_enabled_ = enabled && !close_after_flush_;
    if (reading_enabled_ && used_ > 0 && !reading_) {
      // The handler paused with frames still buffered: pass them again first. No read is
      // started before that, since a read appends to the same buffer.
      if (!redrive_posted_) {
        redrive_posted_ = true;
        asio::post(socket_.get_executor(), [self = shared_from_this()] {
          self->redrive_posted_ = false;
          self->Process();
        });
      }
      return;
    }
    MaybeRead();
  }
  ConnectionId id() const override { return ConnectionId(id_); }
  const std::string& peer() const override { return peer_; }
  bool peer_is_loopback() const override { return loopback_; }
  size_t pending_output() const override {
    return wbuf_.size() + (handler_ ? handler_->Output().size() : 0);
  }

  void SayGoodbye() {
    if (closed_) return;
    handler_->OnServerShutdown();
    RequestFlush();
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    // Keep this object alive until the end of the turn: the caller may be inside one of our
    // callbacks, and in-flight operations complete with operation_aborted.
    auto self = shared_from_this();
    handler_->OnClosed();
    server_.Remove(id_);
    asio::post(socket_.get_executor(), [self] {});
  }

 private:
  void MaybeRead() {
    if (closed_ || reading_ || !reading_enabled_ || redrive_posted_) return;
    if (pending_output() > server_.options_.max_pending_output) return;  // resumes after a write
    if (rbuf_.size() - used_ < read_chunk_) rbuf_.resize(used_ + read_chunk_);
    reading_ = true;
    socket_.async_read_some(asio::buffer(rbuf_.data() + used_, rbuf_.size() - used_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                              self->reading_ = false;
                              self->OnRead(ec, n);
                            });
  }

  void OnRead(boost::system::error_code ec, size_t n) {
    if (closed_) return;
    if (ec) {
      if (ec != asio::error::eof && ec != asio::error::connection_reset) {
        Log()->debug("{}: read error: {}", peer_, ec.message());
      }
      Shutdown();
      return;
    }
    used_ += n;
    read_since_tick_ = true;
    AdaptReadChunk(n);
    Process();
  }

  void AdaptReadChunk(size_t n) {
    if (n >= read_chunk_) {
      read_chunk_ = std::min(read_chunk_ * 2, kMaxReadChunk);
      quiet_reads_ = 0;
    } else if (n < read_chunk_ / 4 && read_chunk_ > kMinReadChunk && ++quiet_reads_ >= 8) {
      read_chunk_ /= 2;
      quiet_reads_ = 0;
      shrink_read_buffer_ = true;
    }
  }

  // A connection that read nothing for a tick gives back the write buffers' capacity a burst
  // left large (the read buffer shrinks in Process once reads have become small).
  bool ShrinkWriteBuffers() {
    bool released = !writing_ && wbuf_.ReleaseIfEmptyAndAbove(kMaxReadChunk);
    released = handler_->Output().ReleaseIfEmptyAndAbove(kMaxReadChunk) || released;
    return released;
  }

  // Hands everything buffered to the handler, writes its output, reads on.
  void Process() {
    if (closed_) return;
    const size_t consumed = handler_->OnData(std::span<const std::byte>(rbuf_.data(), used_));
    if (closed_) return;
    if (consumed > 0) {
      std::memmove(rbuf_.data(), rbuf_.data() + consumed, used_ - consumed);
      used_ -= consumed;
    }
    // Reads have become small and none is in flight: the buffer a burst left large can go.
    if (shrink_read_buffer_ && used_ == 0) {
      shrink_read_buffer_ = false;
      if (rbuf_.capacity() > 2 * read_chunk_) std::vector<std::byte>().swap(rbuf_);
    }
    Flush();
    MaybeRead();
  }

  void Flush() {
    if (closed_ || writing_) return;
    ByteBuffer& out = handler_->Output();
    if (out.empty()) {
      if (close_after_flush_) Shutdown();
      return;
    }
    wbuf_.Swap(out);
    writing_ = true;
    asio::async_write(socket_, asio::buffer(wbuf_.data(), wbuf_.size()),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        self->writing_ = false;
                        self->wbuf_.Clear();
                        if (self->closed_) return;
                        if (ec) {
                          Log()->debug("{}: write error: {}", self->peer_, ec.message());
                          self->Shutdown();
                          return;
                        }
                        self->handler_->OnOutputDrained();
                        if (self->closed_) return;
                        self->Flush();
                        self->MaybeRead();
                      });
  }

  Server& server_;
  tcp::socket socket_;
  uint64_t id_;
  std::string peer_;
  bool loopback_ = false;
  std::unique_ptr<ProtocolHandler> handler_;
  std::vector<std::byte> rbuf_;
  size_t used_ = 0;
  size_t read_chunk_ = kMinReadChunk;
  int quiet_reads_ = 0;
  bool read_since_tick_ = false;
  bool shrink_read_buffer_ = false;
  ByteBuffer wbuf_;
  bool reading_ = false;
  bool reading_enabled_ = true;
  bool redrive_posted_ = false;
  bool writing_ = false;
  bool flush_posted_ = false;
  bool close_after_flush_ = false;
  bool closed_ = false;
};

Server::Server(asio::io_context& io, HandlerFactory factory, ServerOptions options)
    : io_(io),
      factory_(std::move(factory)),
      options_(std::move(options)),
      acceptor_(io),
      tick_timer_(io),
      accept_timer_(io),
      shutdown_timer_(io) {}

Server::~Server() { Stop(); }

result<uint16_t> Server::Listen() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options_.bind, ec);
  if (ec) return std::error_code(ec.value(), std::generic_category());
  tcp::endpoint ep(addr, options_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return std::error_code(ec.value(), std::generic_category());
  const uint16_t port = acceptor_.local_endpoint().port();
  Log()->info("{} listening on {}:{}", options_.name, options_.bind, port);
  Accept();
  Tick();
  return port;
}

void Server::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (stopped_) return;
    if (ec) {
      if (ec != asio::error::operation_aborted) {
        // Out of file descriptors (EMFILE) fails again at once: retry a little later instead
        // of spinning, and say so once per burst.
        if (!accept_backoff_) {
          Log()->warn("{}: accept failed: {} ({} connections open); retrying in 100 ms",
                      options_.name, ec.message(), connections_.size());
        }
        accept_backoff_ = true;
        accept_timer_.expires_after(std::chrono::milliseconds(100));
        accept_timer_.async_wait([this](boost::system::error_code e) {
          if (!e && !stopped_) Accept();
        });
      }
      return;
    }
    accept_backoff_ = false;
    const uint64_t id = next_id_++;
    auto conn = std::make_shared<TcpConnection>(*this, std::move(socket), id);
    connections_.emplace(id, conn);
    Log()->debug("{}: accepted {} (connection {})", options_.name, conn->peer(), id);
    conn->Start(factory_(*conn));
    if (AtConnectionLimit()) {
      // RabbitMQ 3.10 (Ranch's max_connections) stops accepting as well: clients beyond the
      // limit wait in the kernel's listen backlog, and are served in order as connections close.
      accept_paused_ = true;
      // Once per 10 s at most: a broker kept at its limit pauses at every close.
      const auto now = std::chrono::steady_clock::now();
      const bool loud = now - last_limit_warning_ >= std::chrono::seconds(10);
      if (loud) last_limit_warning_ = now;
      Log()->log(loud ? spdlog::level::warn : spdlog::level::debug,
                 "{}: max_connections ({}) reached: new connections wait until one closes",
                 options_.name, options_.max_connections);
      return;
    }
    Accept();
  });
}

bool Server::AtConnectionLimit() const {
  return options_.max_connections != 0 && connections_.size() >= options_.max_connections;
}

void Server::Tick() {
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    const auto now = std::chrono::steady_clock::now();
    // Copy: a tick may close a connection, which removes it from the map.
    std::vector<std::shared_ptr<TcpConnection>> conns;
    conns.reserve(connections_.size());
    for (auto& [id, c] : connections_) conns.push_back(c);
    bool released = false;
    for (auto& c : conns) released = c->Tick(now) || released;
    // A burst's buffers (and the messages it carried) were freed in the middle of the heap,
    // where the allocator keeps them: hand them back so RSS follows the idle footprint.
    if (released) ReleaseFreeMemory();
    Tick();
  });
}

void Server::Remove(uint64_t id) {
  connections_.erase(id);
  if (accept_paused_ && !AtConnectionLimit() && !stopped_ && acceptor_.is_open()) {
    accept_paused_ = false;
    Log()->debug("{}: below max_connections ({}) again: accepting", options_.name,
                 options_.max_connections);
    Accept();
  }
}

void Server::Shutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  if (stopped_) {
    done();
    return;
  }
  boost::system::error_code ec;
  acceptor_.close(ec);
  accept_timer_.cancel();
  std::vector<std::shared_ptr<TcpConnection>> conns;
  for (auto& [id, c] : connections_) conns.push_back(c);
  for (auto& c : conns) c->SayGoodbye();
  shutdown_deadline_ = std::chrono::steady_clock::now() + grace;
  AwaitDrained(std::move(done));
}

void Server::AwaitDrained(std::function<void()> done) {
  if (connections_.empty() || std::chrono::steady_clock::now() >= shutdown_deadline_) {
    if (!connections_.empty()) {
      Log()->info("{}: {} connections did not close within the grace period; closing them",
                  options_.name, connections_.size());
    }
    Stop();
    done();
    return;
  }
  shutdown_timer_.expires_after(std::chrono::milliseconds(20));
  shutdown_timer_.async_wait([this, done = std::move(done)](boost::system::error_code) mutable {
    AwaitDrained(std::move(done));
  });
}

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  tick_timer_.cancel();
  accept_timer_.cancel();
  shutdown_timer_.cancel();
  std::vector<std::shared_ptr<TcpConnection>> conns;
  for (auto& [id, c] : connections_) conns.push_back(c);
  for (auto& c : conns) c->Shutdown();
}

}  // namespace warren::net
