// Drives a Connection through a fake transport with frames built by the codec's writer.
#include "amqp/session/session.h"

#include <gtest/gtest.h>

#include "amqp/codec/frame_writer.h"
#include "amqp/session/session_testing.h"
#include "base/fake_transport.h"

namespace warren::amqp {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() { conn_ = std::make_unique<Connection>(t_, broker_, cfg_); }

  // Feeds bytes; returns the methods (and content bodies) the server wrote.
  std::vector<Method> Feed(const ByteBuffer& in) {
    const size_t consumed = conn_->OnData(in.span());
    EXPECT_EQ(consumed, in.size());
    return Drain();
  }
  std::vector<Method> Drain() { return DrainMethods(conn_->Output(), &heartbeats_); }
  ByteBuffer Handshake(uint32_t frame_max = 131072, uint16_t heartbeat = 60) {
    ClientHello hello;
    hello.capabilities = {{"authentication_failure_close", FieldValue(true)},
                          {"consumer_cancel_notify", FieldValue(true)}};
    hello.frame_max = frame_max;
    hello.heartbeat = heartbeat;
    return ClientHandshake(hello);
  }
  template <typename M>
  static const M* As(const std::vector<Method>& ms, size_t i) {
    return i < ms.size() ? std::get_if<M>(&ms[i]) : nullptr;
  }
  void Publish(ByteBuffer& b, uint16_t ch, const std::string& rk, const std::string& body,
               bool mandatory = false) {
    BasicPublish p;
    p.routing_key = rk;
    p.mandatory = mandatory;
    ByteBuffer props;
    EncodeProperties(BasicProperties{}, props);
    WriteContent(b, ch, p, props.span(),
                 std::span(reinterpret_cast<const std::byte*>(body.data()), body.size()), 131072);
  }

  // Channel 1 opened, queue "q" declared, `bodies` published to it and a consumer on it, in one
  // batch of frames.
  ByteBuffer QueueWithConsumer(const std::vector<std::string>& bodies, bool no_ack = false) {
    ByteBuffer b;
    WriteMethod(b, 1, ChannelOpen{});
    QueueDeclare qd;
    qd.queue = "q";
    WriteMethod(b, 1, qd);
    for (const auto& body : bodies) Publish(b, 1, "q", body);
    BasicConsume c;
    c.queue = "q";
    c.no_ack = no_ack;
    WriteMethod(b, 1, c);
    return b;
  }

  FakeTransport t_;
  broker::Broker broker_;
  SessionConfig cfg_;
  std::unique_ptr<Connection> conn_;
  int heartbeats_ = 0;
};

TEST_F(SessionTest, HandshakeStartTuneOpen) {
  auto out = Feed(Handshake());
  ASSERT_EQ(out.size(), 3u);
  const auto* start = As<ConnectionStart>(out, 0);
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(start->version_major, 0);
  EXPECT_EQ(start->version_minor, 9);
  EXPECT_EQ(start->mechanisms, "PLAIN AMQPLAIN");
  const auto* caps = Find(start->server_properties, "capabilities")->get_if<FieldTable>();
  ASSERT_NE(caps, nullptr);
  EXPECT_NE(Find(*caps, "publisher_confirms"), nullptr);
  const auto* tune = As<ConnectionTune>(out, 1);
  ASSERT_NE(tune, nullptr);
  EXPECT_EQ(tune->channel_max, 2047);
  EXPECT_EQ(tune->frame_max, 131072u);
  EXPECT_EQ(tune->heartbeat, 60);
  EXPECT_NE(As<ConnectionOpenOk>(out, 2), nullptr);
}

TEST_F(SessionTest, HeaderSplitAcrossReadsIsKept) {
  ByteBuffer b;
  b.PutBytes(kProtocolHeader, 3);
  EXPECT_EQ(conn_->OnData(b.span()), 0u) << "a partial header is left for the next read";
}

TEST_F(SessionTest, GuestFromRemoteHostIsRefused) {
  t_.loopback = false;
  auto out = Feed(Handshake());
  const auto* close = As<ConnectionClose>(out, 1);
  ASSERT_NE(close, nullptr);
  EXPECT_EQ(close->reply_code, 403);
  EXPECT_EQ(close->reply_text,
            "ACCESS_REFUSED - user 'guest' - User can only log in via localhost");
}

TEST_F(SessionTest, TuneOkFrameMaxTooSmallIs530) {
  auto out = Feed(Handshake(/*frame_max=*/1000));
  const auto* close = As<ConnectionClose>(out, 2);
  ASSERT_NE(close, nullptr);
  EXPECT_EQ(close->reply_code, 530);
  EXPECT_EQ(close->reply_text,
            "NOT_ALLOWED - negotiated frame_max = 1000 is lower than the minimum allowed value "
            "(4096)");
}

TEST_F(SessionTest, HeartbeatsSentAndSilentPeerDropped) {
  Feed(Handshake(131072, /*heartbeat=*/10));
  auto start = std::chrono::steady_clock::now();
  conn_->OnTick(start + std::chrono::seconds(6));
  Drain();
  EXPECT_EQ(heartbeats_, 1);
  EXPECT_FALSE(t_.aborted);
  conn_->OnTick(start + std::chrono::seconds(21));
  EXPECT_TRUE(t_.aborted) << "two silent intervals drop the TCP connection";
}

TEST_F(SessionTest, BodyBeforeHeaderIs505OnTheConnection) {
  Feed(Handshake());
  ByteBuffer b;
  WriteMethod(b, 1, ChannelOpen{});
  std::string body = "x";
  WriteBody(b, 1, std::span(reinterpret_cast<const std::byte*>(body.data()), 1), 131072);
  auto out = Feed(b);
  const auto* close = As<ConnectionClose>(out, 1);
  ASSERT_NE(close, nullptr);
  EXPECT_EQ(close->reply_code, 505);
}

TEST_F(SessionTest, ConfirmsAreCumulativePerReadAndFollowReturns) {
  Feed(Handshake());
  ByteBuffer b;
  WriteMethod(b, 1, ChannelOpen{});
  WriteMethod(b, 1, ConfirmSelect{});
  QueueDeclare qd;
  qd.queue = "q";
  WriteMethod(b, 1, qd);
  Feed(b);
  ByteBuffer pubs;
  Publish(pubs, 1, "q", "a");
  Publish(pubs, 1, "q", "b");
  Publish(pubs, 1, "nowhere", "c", /*mandatory=*/true);
  auto out = Feed(pubs);
  ASSERT_EQ(out.size(), 2u);
  const auto* ret = As<BasicReturn>(out, 0);
  ASSERT_NE(ret, nullptr);
  EXPECT_EQ(ret->reply_code, 312);
  const auto* ack = As<BasicAck>(out, 1);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->delivery_tag, 3u);
  EXPECT_TRUE(ack->multiple);
}

TEST_F(SessionTest, OversizeMessageClosesTheChannelWith406) {
  cfg_.max_message_size = 4;
  conn_ = std::make_unique<Connection>(t_, broker_, cfg_);
  Feed(Handshake());
  ByteBuffer b;
  WriteMethod(b, 1, ChannelOpen{});
  Publish(b, 1, "q", "too long");
  auto out = Feed(b);
  const auto* close = As<ChannelClose>(out, 1);
  ASSERT_NE(close, nullptr);
  EXPECT_EQ(close->reply_code, 406);
  EXPECT_EQ(close->reply_text,
            "PRECONDITION_FAILED - message size 8 is larger than configured max size 4");
  EXPECT_EQ(close->class_id, 60);
  EXPECT_EQ(close->method_id, 40);
}

TEST_F(SessionTest, ClosingConnectionRequeuesUnackedInOrder) {
  Feed(Handshake());
  Feed(QueueWithConsumer({"1", "2"}));
  auto q = broker_.FindVhost("/")->FindQueue("q");
  EXPECT_EQ(q->message_count(), 0u);
  conn_->OnClosed();
  ASSERT_EQ(q->message_count(), 2u);
  auto first = q->Get();
  EXPECT_TRUE(first->redelivered);
  EXPECT_EQ(static_cast<char>(first->message->body()[0]), '1');
}

TEST_F(SessionTest, StalledHandshakeIsDroppedAfterHandshakeTimeout) {
  cfg_.handshake_timeout = std::chrono::milliseconds(500);
  conn_ = std::make_unique<Connection>(t_, broker_, cfg_);
  ByteBuffer b;
  b.PutBytes(kProtocolHeader, 4);
  EXPECT_EQ(conn_->OnData(b.span()), 0u);
  const auto now = std::chrono::steady_clock::now();
  conn_->OnTick(now + std::chrono::milliseconds(100));
  EXPECT_FALSE(t_.aborted);
  conn_->OnTick(now + std::chrono::seconds(2));
  EXPECT_TRUE(t_.aborted);
}

TEST_F(SessionTest, OpenConnectionIsNotSubjectToTheHandshakeTimeout) {
  cfg_.handshake_timeout = std::chrono::milliseconds(500);
  conn_ = std::make_unique<Connection>(t_, broker_, cfg_);
  Feed(Handshake(131072, /*heartbeat=*/0));
  conn_->OnTick(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(t_.aborted);
}

TEST_F(SessionTest, ConsumerTimeoutClosesTheChannelAndRequeues) {
  cfg_.consumer_timeout = std::chrono::milliseconds(1000);
  conn_ = std::make_unique<Connection>(t_, broker_, cfg_);
  Feed(Handshake(131072, 0));
  Feed(QueueWithConsumer({"1"}));
  auto q = broker_.FindVhost("/")->FindQueue("q");
  EXPECT_EQ(q->message_count(), 0u);
  const auto now = std::chrono::steady_clock::now();
  conn_->OnTick(now);
  EXPECT_TRUE(Drain().empty()) << "not yet";
  conn_->OnTick(now + std::chrono::seconds(2));
  auto out = Drain();
  const auto* close = As<ChannelClose>(out, 0);
  ASSERT_NE(close, nullptr);
  EXPECT_EQ(close->reply_code, 406);
  EXPECT_EQ(close->reply_text,
            "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value "
            "used: 1000 ms. This timeout value can be configured, see consumers doc guide to "
            "learn more");
  EXPECT_EQ(close->class_id, 0);
  EXPECT_EQ(q->message_count(), 1u) << "the delivery is requeued";
}

TEST_F(SessionTest, FullWriteBufferHoldsDeliveriesInTheQueueUntilDrained) {
  cfg_.write_buffer_bytes = 1000;
  conn_ = std::make_unique<Connection>(t_, broker_, cfg_);
  Feed(Handshake(131072, 0));
  t_.pending = 5000;  // the peer stopped reading
  Feed(QueueWithConsumer({"1", "2"}, /*no_ack=*/true));
  auto q = broker_.FindVhost("/")->FindQueue("q");
  EXPECT_EQ(q->message_count(), 2u);
  conn_->OnOutputDrained();
  EXPECT_EQ(q->message_count(), 2u) << "still above the bound";
  t_.pending = 0;
  conn_->OnOutputDrained();
  EXPECT_EQ(q->message_count(), 0u);
  size_t delivers = 0;
  for (const auto& m : Drain()) delivers += std::holds_alternative<BasicDeliver>(m);
  EXPECT_EQ(delivers, 2u);
}

TEST_F(SessionTest, ServerShutdownSendsConnectionForced) {
  Feed(Handshake(131072, 0));
  conn_->OnServerShutdown();
  auto out = Drain();
  const auto* close = As<ConnectionClose>(out, 0);
  ASSERT_NE(close, nullptr);
  EXPECT_EQ(close->reply_code, 320);
  EXPECT_EQ(close->reply_text,
            "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'");
  EXPECT_TRUE(t_.closed);
}

}  // namespace
}  // namespace warren::amqp
