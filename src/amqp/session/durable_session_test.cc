// Sessions over a real Store on a FaultyFs: confirms, held replies and the disk alarm.
#include <gtest/gtest.h>

#include <filesystem>

#include "amqp/codec/frame_writer.h"
#include "amqp/session/session.h"
#include "amqp/session/session_testing.h"
#include "base/fake_transport.h"
#include "storage/faulty_fs.h"

namespace warren::amqp {
namespace {

class DurableSessionTest : public ::testing::Test {
 protected:
  DurableSessionTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("warren-dsession-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    storage::StoreOptions o;
    o.data_dir = dir_.string();
    o.disk_free_limit = 1000;
    store_ = std::make_unique<storage::Store>(fs_, o, io_);
    EXPECT_TRUE(store_->Open());
    broker_ = std::make_unique<broker::Broker>(store_.get());
    conn_ = std::make_unique<Connection>(t_, *broker_, SessionConfig{});
  }
  ~DurableSessionTest() override {
    conn_.reset();
    broker_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::vector<Method> Drain() { return DrainMethods(conn_->Output()); }
  // Feeds bytes; returns how many were consumed.
  size_t Feed(const ByteBuffer& in) { return conn_->OnData(in.span()); }
  void Sync() {
    store_->SyncNowForTest();
    io_.restart();
    io_.poll();
  }
  void Open(bool blocked_capability) {
    ClientHello hello;
    hello.capabilities = {{"connection.blocked", FieldValue(blocked_capability)}};
    ByteBuffer b = ClientHandshake(hello);
    WriteMethod(b, 1, ChannelOpen{});
    EXPECT_EQ(Feed(b), b.size());
    Drain();
  }
  void DeclareDurable(const std::string& q) {
    ByteBuffer b;
    QueueDeclare d;
    d.queue = q;
    d.durable = true;
    WriteMethod(b, 1, d);
    EXPECT_EQ(Feed(b), b.size());
    Sync();
    Drain();
  }
  static void Publish(ByteBuffer& b, const std::string& rk, const std::string& body,
                      uint8_t delivery_mode = 2) {
    BasicPublish p;
    p.routing_key = rk;
    BasicProperties props;
    props.delivery_mode = delivery_mode;
    ByteBuffer raw;
    EncodeProperties(props, raw);
    WriteContent(b, 1, p, raw.span(),
                 std::span(reinterpret_cast<const std::byte*>(body.data()), body.size()), 131072);
  }
  template <typename M>
  static std::vector<const M*> All(const std::vector<Method>& ms) {
    std::vector<const M*> out;
    for (const auto& m : ms) {
      if (const auto* x = std::get_if<M>(&m)) out.push_back(x);
    }
    return out;
  }

  std::filesystem::path dir_;
  boost::asio::io_context io_;
  storage::FaultyFs fs_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<broker::Broker> broker_;
  FakeTransport t_;
  std::unique_ptr<Connection> conn_;
};

TEST_F(DurableSessionTest, ConfirmOfAPersistentMessageWaitsForTheSync) {
  Open(true);
  DeclareDurable("q");
  ByteBuffer b;
  WriteMethod(b, 1, ConfirmSelect{});
  Publish(b, "q", "transient", 1);  // nothing to store: confirmed at once
  Publish(b, "q", "persistent");
  Publish(b, "nowhere", "unroutable");  // after a waiting one: confirmed with it
  Feed(b);
  auto out = Drain();
  auto acks = All<BasicAck>(out);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0]->delivery_tag, 1u);
  Sync();
  out = Drain();
  acks = All<BasicAck>(out);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0]->delivery_tag, 3u);
  EXPECT_TRUE(acks[0]->multiple);
}

TEST_F(DurableSessionTest, FailedSyncNacksOnlyWhatItCovered) {
  Open(true);
  DeclareDurable("q");
  ByteBuffer b;
  WriteMethod(b, 1, ConfirmSelect{});
  Publish(b, "q", "a");
  Feed(b);
  Sync();
  auto first = Drain();
  EXPECT_EQ(All<BasicAck>(first).size(), 1u);
  fs_.FailSyncs(true);
  ByteBuffer b2;
  Publish(b2, "q", "b");
  Feed(b2);
  Sync();
  auto out = Drain();
  EXPECT_TRUE(All<BasicAck>(out).empty());
  auto nacks = All<BasicNack>(out);
  ASSERT_EQ(nacks.size(), 1u);
  EXPECT_EQ(nacks[0]->delivery_tag, 2u);
  fs_.FailSyncs(false);
  ByteBuffer b3;
  Publish(b3, "q", "c");
  Feed(b3);
  Sync();
  out = Drain();
  auto acks = All<BasicAck>(out);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0]->delivery_tag, 3u);
  EXPECT_FALSE(acks[0]->multiple);
}

TEST_F(DurableSessionTest, DurableDeclareOkIsHeldUntilTheDefinitionsAreSynced) {
  Open(true);
  ByteBuffer b;
  QueueDeclare d;
  d.queue = "dq";
  d.durable = true;
  WriteMethod(b, 1, d);
  QueueDeclare t;
  t.queue = "tq";  // pipelined after it: its reply must not overtake
  WriteMethod(b, 1, t);
  const size_t consumed = Feed(b);
  EXPECT_LT(consumed, b.size());  // the second declare waits unread
  EXPECT_FALSE(t_.reading);
  EXPECT_TRUE(Drain().empty());
  Sync();
  auto out = Drain();
  ASSERT_EQ(All<QueueDeclareOk>(out).size(), 1u);
  EXPECT_EQ(All<QueueDeclareOk>(out)[0]->queue, "dq");
  EXPECT_TRUE(t_.reading);  // net passes the rest again
  ByteBuffer rest;
  rest.PutBytes(b.span().subspan(consumed));
  EXPECT_EQ(Feed(rest), rest.size());
  out = Drain();
  ASSERT_EQ(All<QueueDeclareOk>(out).size(), 1u);
  EXPECT_EQ(All<QueueDeclareOk>(out)[0]->queue, "tq");
  EXPECT_TRUE(std::filesystem::exists(dir_ / "definitions.json"));
}

TEST_F(DurableSessionTest, DiskAlarmBlocksPublishersAndUnblocks) {
  Open(true);
  DeclareDurable("q");
  ByteBuffer first;
  Publish(first, "q", "before");
  Feed(first);  // a publishing connection now
  Drain();
  fs_.SetFreeBytes(10);  // below the limit of 1000
  store_->CheckDisk();
  auto out = Drain();
  ASSERT_EQ(All<ConnectionBlocked>(out).size(), 1u);
  EXPECT_EQ(All<ConnectionBlocked>(out)[0]->reason, "low on disk");
  // A publish now is not read: it waits in the socket until the alarm clears.
  ByteBuffer b;
  WriteMethod(b, 1, BasicQos{});  // non-publish methods before it are served
  Publish(b, "q", "during");
  const size_t consumed = Feed(b);
  EXPECT_LT(consumed, b.size());
  EXPECT_FALSE(t_.reading);
  EXPECT_EQ(All<BasicQosOk>(Drain()).size(), 1u);
  EXPECT_EQ(broker_->FindVhost("/")->FindQueue("q")->message_count(), 1u);
  fs_.SetFreeBytes(std::nullopt);
  store_->CheckDisk();
  EXPECT_EQ(All<ConnectionUnblocked>(Drain()).size(), 1u);
  EXPECT_TRUE(t_.reading);
  ByteBuffer rest;
  rest.PutBytes(b.span().subspan(consumed));
  EXPECT_EQ(Feed(rest), rest.size());
  EXPECT_EQ(broker_->FindVhost("/")->FindQueue("q")->message_count(), 2u);
}

TEST_F(DurableSessionTest, NonPublishingConnectionIsNotToldItIsBlocked) {
  Open(true);
  fs_.SetFreeBytes(10);
  store_->CheckDisk();
  EXPECT_TRUE(All<ConnectionBlocked>(Drain()).empty());
  ByteBuffer b;
  Publish(b, "q", "x");
  EXPECT_EQ(Feed(b), 0u);  // its first publish blocks it, and now it is told
  EXPECT_EQ(All<ConnectionBlocked>(Drain()).size(), 1u);
}

TEST_F(DurableSessionTest, ClientWithoutTheCapabilityIsBlockedSilently) {
  Open(false);
  fs_.SetFreeBytes(10);
  store_->CheckDisk();
  ByteBuffer b;
  Publish(b, "q", "x");
  EXPECT_EQ(Feed(b), 0u);
  EXPECT_TRUE(All<ConnectionBlocked>(Drain()).empty());
  fs_.SetFreeBytes(std::nullopt);
  store_->CheckDisk();
  EXPECT_TRUE(All<ConnectionUnblocked>(Drain()).empty());
  EXPECT_TRUE(t_.reading);
}

}  // namespace
}  // namespace warren::amqp
