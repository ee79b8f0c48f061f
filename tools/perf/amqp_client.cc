#include "tools/perf/amqp_client.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace warren::perf {

namespace {

std::string PercentDecode(const std::string& s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<Endpoint> ParseUri(const std::string& uri) {
  Endpoint ep;
  std::string rest = uri;
  if (rest.rfind("amqp://", 0) == 0) rest = rest.substr(7);
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    if (slash + 1 < rest.size()) ep.vhost = PercentDecode(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
  }
  if (const auto at = rest.rfind('@'); at != std::string::npos) {
    const std::string creds = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = creds.find(':');
    ep.user = PercentDecode(creds.substr(0, colon));
    ep.password = colon == std::string::npos ? "" : PercentDecode(creds.substr(colon + 1));
  }
  if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    const int p = std::stoi(port);
    if (p <= 0 || p > 65535) return std::nullopt;
    ep.port = static_cast<uint16_t>(p);
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) ep.host = rest;
  return ep;
}

Conn::Conn(asio::any_io_executor ex) : socket_(ex), wake_(ex), in_(kReadBuffer) {}

asio::awaitable<boost::system::error_code> Conn::ReadMore() {
  // Keep the unparsed tail at the front once it is past the middle, so a read has room.
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (begin_ > in_.size() / 2 || end_ == in_.size()) {
    std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == in_.size()) in_.resize(in_.size() * 2);  // one frame bigger than the buffer
  auto [ec, n] =
      co_await socket_.async_read_some(asio::buffer(in_.data() + end_, in_.size() - end_), kUse);
  end_ += n;
  co_return ec;
}

void Conn::Flush() {
  if (writing_ || out_.empty() || write_error_) return;
  writing_ = true;
  asio::co_spawn(
      executor(), [self = shared_from_this()] { return self->WriteLoop(); }, asio::detached);
}

asio::awaitable<void> Conn::WriteLoop() {
  while (!out_.empty()) {
    inflight_.Swap(out_);
    auto [ec, n] =
        co_await asio::async_write(socket_, asio::buffer(inflight_.data(), inflight_.size()), kUse);
    inflight_.Clear();
    bytes_written_ += n;
    if (ec) {
      write_error_ = ec;
      out_.Clear();
      break;
    }
    wake_.cancel();  // a producer waiting for room refills out_ during the next write
  }
  writing_ = false;
  wake_.cancel();
}

asio::awaitable<void> Conn::Sleep(asio::steady_timer::time_point deadline) {
  wake_.expires_at(deadline);
  co_await wake_.async_wait(kUse);
}

void Conn::Close() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  wake_.cancel();
}

asio::awaitable<Client::MethodOrError> Client::ReadMethod() {
  MethodOrError res;
  for (;;) {
    const auto in = conn_->unparsed();
    const auto parsed = reader_.Next(in);
    if (const auto* close = std::get_if<amqp::Close>(&parsed)) {
      res.err = "protocol error from broker: " + close->reply_text;
      co_return res;
    }
    if (const auto* fp = std::get_if<amqp::FrameParsed>(&parsed)) {
      const amqp::Frame f = fp->frame;
      const size_t consumed = fp->consumed;
      if (f.type != amqp::kFrameMethodType) {
        conn_->Consume(consumed);
        continue;  // heartbeats; stray content is not expected during set-up
      }
      auto m = amqp::DecodeMethod(f.payload);
      conn_->Consume(consumed);
      if (!m) {
        res.err = "cannot decode a method from the broker: " + m.error().reply_text;
        co_return res;
      }
      if (auto* cc = std::get_if<amqp::ConnectionClose>(&m.value())) {
        res.err = "broker closed the connection: " + std::to_string(cc->reply_code) + " " +
                  cc->reply_text;
        amqp::WriteMethod(conn_->out(), 0, amqp::ConnectionCloseOk{});
        conn_->Flush();
        co_return res;
      }
      if (auto* ch = std::get_if<amqp::ChannelClose>(&m.value())) {
        res.err =
            "broker closed the channel: " + std::to_string(ch->reply_code) + " " + ch->reply_text;
        co_return res;
      }
      res.m = std::move(m.value());
      co_return res;
    }
    if (auto ec = co_await conn_->ReadMore()) {
      res.err = "connection lost: " + ec.message();
      co_return res;
    }
  }
}

asio::awaitable<std::string> Client::Open(const Endpoint& ep, const std::string& name) {
  tcp::resolver resolver(conn_->executor());
  auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), kUse);
  if (rec) co_return "cannot resolve " + ep.host + ": " + rec.message();
  auto [cec, endpoint] = co_await asio::async_connect(conn_->socket(), results, kUse);
  if (cec)
    co_return "cannot connect to " + ep.host + ":" + std::to_string(ep.port) + ": " + cec.message();
  (void)endpoint;
  conn_->socket().set_option(tcp::no_delay(true));

  conn_->out().PutBytes(amqp::kProtocolHeader, sizeof(amqp::kProtocolHeader));
  conn_->Flush();
  auto start = co_await ReadMethod();
  if (!start) co_return start.error();
  if (!std::holds_alternative<amqp::ConnectionStart>(*start)) co_return "expected connection.start";

  amqp::ConnectionStartOk start_ok;
  start_ok.client_properties.push_back({"product", amqp::FieldValue(std::string("warren-perf"))});
  start_ok.client_properties.push_back({"connection_name", amqp::FieldValue(std::string(name))});
  start_ok.mechanism = "PLAIN";
  start_ok.response = std::string(1, '\0') + ep.user + std::string(1, '\0') + ep.password;
  start_ok.locale = "en_US";
  amqp::WriteMethod(conn_->out(), 0, start_ok);
  conn_->Flush();
  auto tune = co_await ReadMethod();
  if (!tune) co_return tune.error();
  const auto* t = std::get_if<amqp::ConnectionTune>(&*tune);
  if (t == nullptr) co_return "expected connection.tune";
  const uint32_t frame_max = t->frame_max == 0 ? 131072u : std::min<uint32_t>(t->frame_max, 131072);
  amqp::ConnectionTuneOk tune_ok;
  tune_ok.channel_max = t->channel_max == 0 ? 2047 : t->channel_max;
  tune_ok.frame_max = frame_max;
  tune_ok.heartbeat = 0;  // a benchmark connection is never idle long enough to need them
  reader_.set_frame_max(frame_max);
  amqp::WriteMethod(conn_->out(), 0, tune_ok);
  amqp::ConnectionOpen open;
  open.virtual_host = ep.vhost;
  amqp::WriteMethod(conn_->out(), 0, open);
  conn_->Flush();
  auto open_ok = co_await ReadMethod();
  if (!open_ok) co_return open_ok.error();
  if (!std::holds_alternative<amqp::ConnectionOpenOk>(*open_ok)) co_return "expected open-ok";
  // Named, not a temporary: GCC 12 destroys temporaries in a co_await expression twice.
  const amqp::ChannelOpen channel_open;
  co_return co_await Rpc<amqp::ChannelOpenOk>(channel_open);
}

asio::awaitable<void> Client::Shutdown() {
  if (!conn_->socket().is_open()) co_return;
  amqp::ConnectionClose close;
  close.reply_code = 200;
  close.reply_text = "Goodbye";
  amqp::WriteMethod(conn_->out(), 0, close);
  conn_->Flush();
  // Wait for close-ok, skipping whatever is still in flight (deliveries, confirms).
  asio::steady_timer guard(conn_->executor());
  guard.expires_after(std::chrono::seconds(2));
  auto conn = conn_;
  guard.async_wait([conn](boost::system::error_code ec) {
    if (!ec) conn->Close();
  });
  for (;;) {
    const auto parsed = reader_.Next(conn_->unparsed());
    if (const auto* fp = std::get_if<amqp::FrameParsed>(&parsed)) {
      const bool close_ok = fp->frame.type == amqp::kFrameMethodType &&
                            MethodKey(fp->frame.payload) == ((10u << 16) | 51);
      conn_->Consume(fp->consumed);
      if (close_ok) break;
      continue;
    }
    if (std::holds_alternative<amqp::Close>(parsed)) break;
    if (co_await conn_->ReadMore()) break;
  }
  guard.cancel();
  conn_->Close();
}

}  // namespace warren::perf
