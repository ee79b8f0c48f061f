#include "tools/perf/load.h"

#include <algorithm>
#include <cstring>

namespace warren::perf {

namespace {

constexpr uint32_t kKeyConnectionClose = (10u << 16) | 50;
constexpr uint32_t kKeyConnectionCloseOk = (10u << 16) | 51;
constexpr uint32_t kKeyChannelClose = (20u << 16) | 40;
constexpr uint32_t kKeyBasicCancel = (60u << 16) | 30;
constexpr size_t kHighWater = 256 * 1024;  // bytes queued behind an in-flight write

std::string QueueName(const std::string& pattern, int i, int n) {
  if (pattern.empty()) return "";
  if (const auto at = pattern.find("%d"); at != std::string::npos) {
    return pattern.substr(0, at) + std::to_string(i) + pattern.substr(at + 2);
  }
  return n == 1 ? pattern : pattern + "-" + std::to_string(i);
}

std::string CloseText(std::span<const std::byte> payload) {
  auto m = amqp::DecodeMethod(payload);
  if (!m) return "undecodable close";
  if (const auto* c = std::get_if<amqp::ConnectionClose>(&m.value())) {
    return "broker closed the connection: " + std::to_string(c->reply_code) + " " + c->reply_text;
  }
  if (const auto* c = std::get_if<amqp::ChannelClose>(&m.value())) {
    return "broker closed the channel: " + std::to_string(c->reply_code) + " " + c->reply_text;
  }
  return "unexpected close";
}

}  // namespace

asio::awaitable<std::string> DeclareTopology(Client& c, const Options& o, Topology* t) {
  const bool fanout = o.exchange_type == "fanout";
  t->exchange = o.exchange.empty() ? "amq." + o.exchange_type : o.exchange;
  if (t->exchange.rfind("amq.", 0) != 0) {
    amqp::ExchangeDeclare ed;
    ed.exchange = t->exchange;
    ed.type = o.exchange_type;
    ed.durable = o.durable;
    if (auto err = co_await c.Rpc<amqp::ExchangeDeclareOk>(ed); !err.empty()) co_return err;
  }
  for (int i = 0; i < o.queues; ++i) {
    amqp::QueueDeclare qd;
    qd.queue = QueueName(o.queue, i, o.queues);
    qd.durable = o.durable;
    amqp::QueueDeclareOk ok;
    if (auto err = co_await c.Rpc(qd, &ok); !err.empty()) co_return err;
    if (qd.queue.empty()) t->delete_at_end.push_back(ok.queue);
    amqp::QueueBind qb;
    qb.queue = ok.queue;
    qb.exchange = t->exchange;
    qb.routing_key = fanout ? "" : ok.queue;
    if (auto err = co_await c.Rpc<amqp::QueueBindOk>(qb); !err.empty()) co_return err;
    t->queues.push_back(ok.queue);
    if (!fanout) t->keys.push_back(ok.queue);
  }
  if (fanout || t->keys.empty()) t->keys.push_back("");
  co_return std::string();
}

asio::awaitable<void> DeleteQueues(Client& c, const std::vector<std::string>& queues) {
  for (const auto& q : queues) {
    amqp::QueueDelete qd;
    qd.queue = q;
    if (auto err = co_await c.Rpc<amqp::QueueDeleteOk>(qd); !err.empty()) {
      std::fprintf(stderr, "warren-perf: deleting queue %s: %s\n", q.c_str(), err.c_str());
      co_return;
    }
  }
}

// ---------------------------------------------------------------------------------- Worker

asio::awaitable<std::string> Worker::ReadLoop() {
  Conn& conn = client_.conn();
  for (;;) {
    for (;;) {
      const auto parsed = client_.reader().Next(conn.unparsed());
      if (const auto* close = std::get_if<amqp::Close>(&parsed)) {
        co_return "protocol error from broker: " + close->reply_text;
      }
      const auto* fp = std::get_if<amqp::FrameParsed>(&parsed);
      if (fp == nullptr) break;  // need more
      const amqp::Frame f = fp->frame;
      if (f.type == amqp::kFrameMethodType) {
        const uint32_t key = MethodKey(f.payload);
        if (key == kKeyConnectionCloseOk) {
          conn.Consume(fp->consumed);
          closed_ = true;
          conn.Close();
          co_return std::string();
        }
        if (key == kKeyConnectionClose || key == kKeyChannelClose) {
          std::string err = CloseText(f.payload);
          conn.Consume(fp->consumed);
          if (key == kKeyConnectionClose)
            amqp::WriteMethod(conn.out(), 0, amqp::ConnectionCloseOk{});
          conn.Flush();
          co_return err;
        }
      }
      OnFrame(f);
      conn.Consume(fp->consumed);
      if (!error_.empty()) co_return error_;
    }
    conn.Flush();
    if (auto ec = co_await conn.ReadMore()) {
      if (closing_) co_return std::string();
      co_return "connection lost: " + ec.message();
    }
    now_ns_ = NowNs();
  }
}

void Worker::BeginClose() {
  if (closing_) return;
  closing_ = true;
  Conn& conn = client_.conn();
  if (!conn.socket().is_open()) return;
  amqp::ConnectionClose close;
  close.reply_code = 200;
  close.reply_text = "Goodbye";
  amqp::WriteMethod(conn.out(), 0, close);
  conn.Flush();
  conn.wake().cancel();
  // A broker that has stopped reading from us (flow control) never answers: give up after 3 s.
  auto timer = std::make_shared<asio::steady_timer>(conn.executor(), std::chrono::seconds(3));
  timer->async_wait([timer, c = client_.conn_ptr()](boost::system::error_code) { c->Close(); });
}

// -------------------------------------------------------------------------------- Producer

asio::awaitable<std::string> Producer::Start(const Topology& t) {
  const std::string name = "warren-perf producer " + std::to_string(index_);
  if (auto err = co_await client_.Open(opts_.endpoint, name); !err.empty()) {
    co_return err;
  }
  if (opts_.confirm > 0) {
    const amqp::ConfirmSelect select;
    if (auto err = co_await client_.Rpc<amqp::ConfirmSelectOk>(select); !err.empty()) {
      co_return err;
    }
  }
  amqp::BasicPublish publish;
  publish.exchange = t.exchange;
  publish.routing_key = t.keys[static_cast<size_t>(index_) % t.keys.size()];
  amqp::BasicProperties props;
  if (opts_.persistent) props.delivery_mode = 2;
  ByteBuffer raw_props;
  amqp::EncodeProperties(props, raw_props);
  std::vector<std::byte> body(opts_.size, std::byte{0});
  amqp::WriteMethod(template_, 1, publish);
  amqp::WriteContentHeader(template_, 1, amqp::BasicPublish::kClassId, body.size(),
                           raw_props.span());
  stamp_at_ = template_.size() + 7;  // the first body frame's payload
  amqp::WriteBody(template_, 1, body, client_.frame_max());
  client_.conn().out().Reserve(kHighWater + opts_.batch * template_.size());
  co_return std::string();
}

asio::awaitable<std::string> Producer::Run() {
  asio::co_spawn(
      executor(), [this] { return PublishLoop(); }, asio::detached);
  co_return co_await ReadLoop();
}

void Producer::Stop() { BeginClose(); }

asio::awaitable<void> Producer::PublishLoop() {
  Conn& conn = client_.conn();
  const double rate = opts_.rate > 0 ? opts_.rate / opts_.producers : 0;
  const auto start = std::chrono::steady_clock::now();
  const uint64_t window = opts_.confirm > 0 ? static_cast<uint64_t>(opts_.confirm) : 0;
  while (!closing_ && !conn.write_error()) {
    if (opts_.pmessages > 0 && sent_ >= opts_.pmessages) {
      if (window == 0 || first_unconfirmed_ == next_seq_) {
        counters_.done_ns.store(NowNs(), std::memory_order_relaxed);
        co_return;
      }
      co_await conn.Sleep(asio::steady_timer::time_point::max());
      continue;
    }
    uint64_t n = opts_.batch;
    auto wake_at = asio::steady_timer::time_point::max();
    if (opts_.pmessages > 0) n = std::min(n, opts_.pmessages - sent_);
    if (window > 0) n = std::min(n, window - std::min(window, next_seq_ - first_unconfirmed_));
    if (rate > 0) {
      const auto now = std::chrono::steady_clock::now();
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const auto due = static_cast<uint64_t>(elapsed * rate) + 1;
      n = std::min(n, due > sent_ ? due - sent_ : 0);
      if (n == 0) {
        wake_at = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(static_cast<double>(sent_) / rate));
      }
    }
    if (conn.out().size() >= kHighWater) n = 0;  // wait for the in-flight write
    if (n == 0) {
      co_await conn.Sleep(wake_at);
      continue;
    }
    AppendBatch(n);
    conn.Flush();
    if (conn.writing() && conn.out().size() >= kHighWater) {
      co_await conn.Sleep(asio::steady_timer::time_point::max());
    }
  }
}

void Producer::AppendBatch(size_t n) {
  ByteBuffer& out = client_.conn().out();
  const uint64_t now = NowNs();
  const bool stamp = opts_.size >= 8;
  for (size_t i = 0; i < n; ++i) {
    const size_t at = out.size();
    out.PutBytes(template_.span());
    if (stamp) std::memcpy(out.data() + at + stamp_at_, &now, sizeof(now));
  }
  if (opts_.confirm > 0) {
    unconfirmed_ns_.insert(unconfirmed_ns_.end(), n, now);
    next_seq_ += n;
  }
  sent_ += n;
  counters_.Add(counters_.sent, n);
}

void Producer::OnFrame(const amqp::Frame& f) {
  if (f.type != amqp::kFrameMethodType) return;  // basic.return content, heartbeats
  const uint32_t key = MethodKey(f.payload);
  uint64_t tag = 0;
  bool multiple = false;
  if ((key == kKeyBasicAck || key == kKeyBasicNack) && ParseAck(f.payload, &tag, &multiple)) {
    Confirm(tag, multiple, key == kKeyBasicAck);
  }
}

// Records the confirm latency of every newly confirmed publish. A single (non-multiple) ack
// may skip ahead; its slot is zeroed and popped once the front catches up.
void Producer::Confirm(uint64_t tag, bool multiple, bool ack) {
  if (tag < first_unconfirmed_ || tag >= next_seq_) return;
  const uint64_t now = now_ns_ != 0 ? now_ns_ : NowNs();
  uint64_t n = 0;
  ConfirmEvent ev{now, UINT64_MAX, 0, 0};
  auto record = [&](uint64_t& sent_ns) {
    if (sent_ns == 0) return;
    confirm_latency_.Record(now > sent_ns ? now - sent_ns : 0);
    ev.oldest_sent_ns = std::min(ev.oldest_sent_ns, sent_ns);
    ev.newest_sent_ns = std::max(ev.newest_sent_ns, sent_ns);
    sent_ns = 0;
    ++n;
  };
  if (multiple) {
    for (uint64_t s = first_unconfirmed_; s <= tag; ++s) {
      record(unconfirmed_ns_.front());
      unconfirmed_ns_.pop_front();
    }
    first_unconfirmed_ = tag + 1;
  } else {
    record(unconfirmed_ns_[tag - first_unconfirmed_]);
  }
  while (!unconfirmed_ns_.empty() && unconfirmed_ns_.front() == 0) {
    unconfirmed_ns_.pop_front();
    ++first_unconfirmed_;
  }
  counters_.Add(ack ? counters_.confirmed : counters_.nacked, n);
  if (!opts_.confirm_log.empty() && n > 0) {
    ev.count = n;
    confirm_events_.push_back(ev);
  }
  client_.conn().wake().cancel();
}

// -------------------------------------------------------------------------------- Consumer

asio::awaitable<std::string> Consumer::Start(const Topology& t) {
  const std::string name = "warren-perf consumer " + std::to_string(index_);
  if (auto err = co_await client_.Open(opts_.endpoint, name); !err.empty()) {
    co_return err;
  }
  if (opts_.prefetch > 0) {
    amqp::BasicQos qos;
    qos.prefetch_count = static_cast<uint16_t>(std::min(opts_.prefetch, 65535));
    if (auto err = co_await client_.Rpc<amqp::BasicQosOk>(qos); !err.empty()) co_return err;
  }
  ack_every_ = std::max(1, opts_.multi_ack);
  if (opts_.prefetch > 0) ack_every_ = std::min(ack_every_, opts_.prefetch);
  amqp::BasicConsume consume;
  consume.queue = t.queues[static_cast<size_t>(index_) % t.queues.size()];
  consume.no_ack = opts_.autoack;
  co_return co_await client_.Rpc<amqp::BasicConsumeOk>(consume);
}

asio::awaitable<std::string> Consumer::Run() {
  now_ns_ = NowNs();
  co_return co_await ReadLoop();
}

void Consumer::Stop() { BeginClose(); }

void Consumer::OnFrame(const amqp::Frame& f) {
  switch (f.type) {
    case amqp::kFrameMethodType: {
      const uint32_t key = MethodKey(f.payload);
      if (key == kKeyBasicDeliver && ParseDeliverTag(f.payload, &last_tag_)) {
        in_content_ = true;
      } else if (key == kKeyBasicCancel) {
        error_ = "the broker cancelled the consumer";
      }
      return;
    }
    case amqp::kFrameHeaderType:
      if (in_content_ && ParseBodySize(f.payload, &body_left_)) {
        want_stamp_ = body_left_ >= 8;
        if (body_left_ == 0) Delivered(0);
      }
      return;
    case amqp::kFrameBodyType: {
      if (!in_content_) return;
      if (want_stamp_ && f.payload.size() >= 8) {
        std::memcpy(&stamp_, f.payload.data(), sizeof(stamp_));
        want_stamp_ = false;
      }
      body_left_ -= std::min<uint64_t>(body_left_, f.payload.size());
      if (body_left_ == 0) Delivered(stamp_);
      return;
    }
    default:
      return;
  }
}

void Consumer::Delivered(uint64_t sent_ns) {
  in_content_ = false;
  stamp_ = 0;
  if (closing_) return;  // after the run's end: not counted, and the close is already queued
  if (sent_ns != 0) latency_.Record(now_ns_ > sent_ns ? now_ns_ - sent_ns : 0);
  counters_.Add(counters_.received, 1);
  counters_.last_recv_ns.store(now_ns_, std::memory_order_relaxed);
  if (opts_.autoack) return;
  if (++unacked_ >= static_cast<uint64_t>(ack_every_)) {
    amqp::BasicAck ack;
    ack.delivery_tag = last_tag_;
    ack.multiple = true;
    amqp::WriteMethod(client_.conn().out(), 1, ack);
    unacked_ = 0;
  }
}

}  // namespace warren::perf
