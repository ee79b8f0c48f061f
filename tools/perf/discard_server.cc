#include "tools/perf/discard_server.h"

#include <cstring>

#include "tools/perf/load.h"

namespace warren::perf {

namespace {
constexpr size_t kHighWater = 256 * 1024;
constexpr size_t kBatch = 256;
}  // namespace

DiscardServer::DiscardServer(std::vector<asio::io_context*> contexts, uint16_t port, size_t size)
    : contexts_(std::move(contexts)),
      acceptor_(*contexts_[0], tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)),
      size_(size) {
  port_ = acceptor_.local_endpoint().port();
}

void DiscardServer::Start() { asio::co_spawn(*contexts_[0], Accept(), asio::detached); }

asio::awaitable<void> DiscardServer::Accept() {
  for (size_t i = 0;; ++i) {
    auto conn = std::make_shared<Conn>(contexts_[i % contexts_.size()]->get_executor());
    auto [ec] = co_await acceptor_.async_accept(conn->socket(), kUse);
    if (ec) co_return;
    conn->socket().set_option(tcp::no_delay(true));
    asio::co_spawn(conn->executor(), Session(conn), asio::detached);
  }
}

asio::awaitable<void> DiscardServer::Session(std::shared_ptr<Conn> conn) {
  // Protocol header.
  while (conn->unparsed().size() < 8) {
    if (co_await conn->ReadMore()) co_return;
  }
  if (amqp::CheckProtocolHeader(conn->unparsed()) != amqp::HeaderCheck::kOk) co_return;
  conn->Consume(8);
  amqp::ConnectionStart start;
  start.version_major = 0;
  start.version_minor = 9;
  start.mechanisms = "PLAIN AMQPLAIN";
  start.locales = "en_US";
  amqp::WriteMethod(conn->out(), 0, start);
  conn->Flush();

  amqp::FrameReader reader(131072 + 8);
  bool confirm = false;
  uint64_t seq = 0, acked = 0;
  int queue_n = 0, consumer_n = 0;
  std::vector<std::shared_ptr<bool>> firehoses;
  bool closing = false;
  for (;;) {
    uint64_t published = 0;
    for (;;) {
      const auto parsed = reader.Next(conn->unparsed());
      const auto* fp = std::get_if<amqp::FrameParsed>(&parsed);
      if (fp == nullptr) {
        if (std::holds_alternative<amqp::Close>(parsed)) closing = true;
        break;
      }
      const amqp::Frame f = fp->frame;
      const size_t consumed = fp->consumed;
      if (f.type != amqp::kFrameMethodType) {
        conn->Consume(consumed);
        continue;
      }
      if (MethodKey(f.payload) == kKeyBasicPublish) {
        ++published;
        conn->Consume(consumed);
        continue;
      }
      auto decoded = amqp::DecodeMethod(f.payload);
      conn->Consume(consumed);
      if (!decoded) {
        closing = true;
        break;
      }
      ByteBuffer& out = conn->out();
      const uint16_t ch = f.channel;
      std::visit(
          [&](auto& m) {
            using M = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<M, amqp::ConnectionStartOk>) {
              amqp::ConnectionTune tune;
              tune.channel_max = 2047;
              tune.frame_max = 131072;
              amqp::WriteMethod(out, 0, tune);
            } else if constexpr (std::is_same_v<M, amqp::ConnectionOpen>) {
              amqp::WriteMethod(out, 0, amqp::ConnectionOpenOk{});
            } else if constexpr (std::is_same_v<M, amqp::ConnectionClose>) {
              amqp::WriteMethod(out, 0, amqp::ConnectionCloseOk{});
              closing = true;
            } else if constexpr (std::is_same_v<M, amqp::ChannelOpen>) {
              amqp::WriteMethod(out, ch, amqp::ChannelOpenOk{});
            } else if constexpr (std::is_same_v<M, amqp::ChannelClose>) {
              amqp::WriteMethod(out, ch, amqp::ChannelCloseOk{});
            } else if constexpr (std::is_same_v<M, amqp::ExchangeDeclare>) {
              amqp::WriteMethod(out, ch, amqp::ExchangeDeclareOk{});
            } else if constexpr (std::is_same_v<M, amqp::QueueDeclare>) {
              amqp::QueueDeclareOk ok;
              ok.queue = m.queue.empty() ? "amq.gen-discard-" + std::to_string(++queue_n) : m.queue;
              amqp::WriteMethod(out, ch, ok);
            } else if constexpr (std::is_same_v<M, amqp::QueueBind>) {
              amqp::WriteMethod(out, ch, amqp::QueueBindOk{});
            } else if constexpr (std::is_same_v<M, amqp::QueueDelete>) {
              amqp::WriteMethod(out, ch, amqp::QueueDeleteOk{});
            } else if constexpr (std::is_same_v<M, amqp::QueuePurge>) {
              amqp::WriteMethod(out, ch, amqp::QueuePurgeOk{});
            } else if constexpr (std::is_same_v<M, amqp::BasicQos>) {
              amqp::WriteMethod(out, ch, amqp::BasicQosOk{});
            } else if constexpr (std::is_same_v<M, amqp::ConfirmSelect>) {
              confirm = true;
              amqp::WriteMethod(out, ch, amqp::ConfirmSelectOk{});
            } else if constexpr (std::is_same_v<M, amqp::BasicConsume>) {
              amqp::BasicConsumeOk ok;
              ok.consumer_tag = m.consumer_tag.empty()
                                    ? "amq.ctag-discard-" + std::to_string(++consumer_n)
                                    : m.consumer_tag;
              amqp::WriteMethod(out, ch, ok);
              auto stop = std::make_shared<bool>(false);
              firehoses.push_back(stop);
              asio::co_spawn(conn->executor(), Firehose(conn, stop, ch, ok.consumer_tag),
                             asio::detached);
            }
            // Acks, rejects and anything else are dropped.
          },
          decoded.value());
    }
    if (published > 0) {
      published_.fetch_add(published, std::memory_order_relaxed);
      seq += published;
      if (confirm && seq > acked) {
        amqp::BasicAck ack;
        ack.delivery_tag = seq;
        ack.multiple = true;
        amqp::WriteMethod(conn->out(), 1, ack);
        acked = seq;
      }
    }
    conn->Flush();
    if (closing) break;
    if (co_await conn->ReadMore()) break;
  }
  for (auto& stop : firehoses) *stop = true;
  // Let the close-ok go out, then drop the connection.
  while (conn->writing()) co_await conn->Sleep(asio::steady_timer::time_point::max());
  conn->Close();
}

asio::awaitable<void> DiscardServer::Firehose(std::shared_ptr<Conn> conn,
                                              std::shared_ptr<bool> stop, uint16_t channel,
                                              std::string tag) {
  ByteBuffer tmpl;
  amqp::BasicDeliver deliver;
  deliver.consumer_tag = tag;
  deliver.delivery_tag = 0;
  deliver.routing_key = "discard";
  amqp::WriteMethod(tmpl, channel, deliver);
  const size_t tag_at = 7 + 4 + 1 + tag.size();  // frame header, class+method, shortstr
  ByteBuffer raw_props;
  amqp::EncodeProperties(amqp::BasicProperties{}, raw_props);
  std::vector<std::byte> body(size_, std::byte{0});
  amqp::WriteContentHeader(tmpl, channel, amqp::BasicDeliver::kClassId, body.size(),
                           raw_props.span());
  const size_t stamp_at = tmpl.size() + 7;
  amqp::WriteBody(tmpl, channel, body, 131072);
  uint64_t delivery_tag = 0;
  while (!*stop && conn->socket().is_open() && !conn->write_error()) {
    ByteBuffer& out = conn->out();
    if (out.size() >= kHighWater) {
      co_await conn->Sleep(asio::steady_timer::time_point::max());
      continue;
    }
    const uint64_t now = NowNs();
    for (size_t i = 0; i < kBatch; ++i) {
      const size_t at = out.size();
      out.PutBytes(tmpl.span());
      out.SetU32At(at + tag_at, static_cast<uint32_t>(++delivery_tag >> 32));
      out.SetU32At(at + tag_at + 4, static_cast<uint32_t>(delivery_tag));
      if (size_ >= 8) std::memcpy(out.data() + at + stamp_at, &now, sizeof(now));
    }
    delivered_.fetch_add(kBatch, std::memory_order_relaxed);
    conn->Flush();
    co_await asio::post(conn->executor(), asio::use_awaitable);  // let the session read
  }
}

}  // namespace warren::perf
