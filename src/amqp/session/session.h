#pragma once
// AMQP 0-9-1 connection and channel state machines over the broker API.
//
// One Connection per socket implements ProtocolHandler (base/transport.h): bytes in, frames
// parsed with the codec, methods dispatched through a declarative table (method_table.cc),
// replies and deliveries appended to Output(). Knows no sockets.
//
// Threading: everything on the connection's shard; the broker is on the same thread.
// Lifetime: net destroys the Connection after OnClosed(), where every channel is released
// (consumers cancelled, unacked deliveries requeued in order, exclusive queues deleted).

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "amqp/codec/close.h"
#include "amqp/codec/frame_reader.h"
#include "amqp/codec/methods.h"
#include "amqp/session/tag_log.h"
#include "base/memory.h"
#include "base/transport.h"
#include "broker/broker.h"

namespace warren::amqp {

struct SessionConfig {
  uint32_t frame_max = 131072;
  uint16_t channel_max = 2047;
  uint16_t heartbeat = 60;
  uint64_t max_message_size = 134217728;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds consumer_timeout{1'800'000};  // 0 = off
  // Above this many bytes waiting to be written, the connection's consumers get nothing more.
  size_t write_buffer_bytes = 8u << 20;
  // The memory alarm publishers are blocked by; nullptr = none (tests, fuzzing).
  MemoryAlarm* memory_alarm = nullptr;
};

std::unique_ptr<ProtocolHandler> MakeAmqpHandler(Transport& t, broker::Broker& b,
                                                 const SessionConfig& cfg);

class Connection;
class Channel;

// One basic.consume subscription.
class ChannelConsumer : public broker::Consumer {
 public:
  ChannelConsumer(Channel& ch, std::string tag, broker::QueuePtr q, bool no_ack, uint16_t prefetch)
      : ch_(ch), tag_(std::move(tag)), queue_(std::move(q)), no_ack_(no_ack), prefetch_(prefetch) {}
  bool CanAccept() const override;
  void Deliver(const std::shared_ptr<broker::Queue>& q, broker::QueueEntry e) override;
  void OnQueueDeleted() override;

  const std::string& tag() const { return tag_; }
  const broker::QueuePtr& queue() const { return queue_; }
  uint32_t unacked = 0;

 private:
  Channel& ch_;
  std::string tag_;
  broker::QueuePtr queue_;
  bool no_ack_;
  uint16_t prefetch_;
};

class Channel {
 public:
  Channel(Connection& conn, uint16_t id) : conn_(conn), id_(id) {}
  ~Channel();
  uint16_t id() const { return id_; }
  bool closing() const { return closing_; }

  // A frame for this channel. Returns a Close to send when the frame is an error.
  std::optional<Close> OnFrame(const Frame& f);
  // Releases broker state: cancels consumers, requeues unacked deliveries in order.
  void Release();
  void MarkClosing() { closing_ = true; }
  // RabbitMQ's consumer_timeout: a Close when the oldest unacked delivery is older than
  // `timeout` at `now`.
  std::optional<Close> CheckConsumerTimeout(std::chrono::steady_clock::time_point now,
                                            std::chrono::milliseconds timeout) const;
  // Offers the queues this channel consumes from their messages again (after a pause).
  void DispatchAll();
  // Publisher confirms for everything settled since the last call: cumulative acks, and nacks
  // for publishes whose storage failed. Publishes that wait for an fdatasync are held back.
  void FlushConfirms();
  // The storage sync thread made progress: confirms and a held reply can go out. Returns a
  // Close if what a held reply promised could not be stored.
  std::optional<Close> OnSynced();
  // True while confirms or a held reply wait for storage.
  bool WaitingForSync() const { return !waiting_.empty() || held_epoch_ != 0; }
  bool ReplyHeld() const { return held_epoch_ != 0; }

  // Method handlers (method_table.cc dispatches to these).
  std::optional<Close> Handle(const ChannelFlow& m);
  std::optional<Close> Handle(const ExchangeDeclare& m);
  std::optional<Close> Handle(const ExchangeDelete& m);
  std::optional<Close> Handle(const ExchangeBind& m);
  std::optional<Close> Handle(const ExchangeUnbind& m);
  std::optional<Close> Handle(const QueueDeclare& m);
  std::optional<Close> Handle(const QueueBind& m);
  std::optional<Close> Handle(const QueueUnbind& m);
  std::optional<Close> Handle(const QueuePurge& m);
  std::optional<Close> Handle(const QueueDelete& m);
  std::optional<Close> Handle(const BasicQos& m);
  std::optional<Close> Handle(const BasicConsume& m);
  std::optional<Close> Handle(const BasicCancel& m);
  std::optional<Close> Handle(const BasicPublish& m);
  std::optional<Close> StartPublish(BasicPublish&& m);
  std::optional<Close> Handle(const BasicGet& m);
  std::optional<Close> Handle(const BasicAck& m);
  std::optional<Close> Handle(const BasicReject& m);
  std::optional<Close> Handle(const BasicNack& m);
  std::optional<Close> Handle(const BasicRecover& m);
  std::optional<Close> Handle(const BasicRecoverAsync& m);
  std::optional<Close> Handle(const ConfirmSelect& m);
  std::optional<Close> Handle(const TxSelect& m);
  std::optional<Close> Handle(const TxCommit& m);
  std::optional<Close> Handle(const TxRollback& m);

 private:
  friend class ChannelConsumer;
  struct Unacked {
    broker::QueuePtr queue;
    broker::QueueEntry entry;
    std::string consumer_tag;  // "" for basic.get
    // The loop turn's clock (Vhost::SteadyNow), not a clock read per delivery.
    std::chrono::steady_clock::time_point delivered_at;
  };
  struct TxPublish {
    broker::MessagePtr message;
    bool mandatory;
  };
  struct TxAck {
    uint64_t tag;
    bool multiple;
    bool ack;      // false: nack/reject
    bool requeue;  // for nacks
  };

  template <typename M>
  void Reply(const M& m);
  std::optional<Close> Fail(uint16_t class_id, uint16_t method_id, const broker::Error& e);
  std::optional<Close> ResolveQueue(std::string& name, uint16_t class_id, uint16_t method_id);
  std::optional<Close> ConsumeReplies(const BasicConsume& m);
  std::optional<Close> OnContentHeader(const Frame& f);
  std::optional<Close> OnContentBody(const Frame& f);
  std::optional<Close> CompletePublish();
  std::optional<Close> DoPublish(const broker::MessagePtr& m, bool mandatory);
  // Validates the tags first; then acks (ack=true) or rejects them.
  std::optional<Close> Settle(uint64_t tag, bool multiple, bool ack, bool requeue,
                              uint16_t method_id);
  void ApplySettle(const std::vector<uint64_t>& tags, bool ack, bool requeue);
  std::vector<uint64_t> TagsFor(uint64_t tag, bool multiple) const;
  void WriteDelivery(ChannelConsumer* c, const broker::QueueEntry& e, uint64_t tag);
  bool GlobalCredit() const { return prefetch_global_ == 0 || unacked_.size() < prefetch_global_; }
  void AckPublishesUpTo(uint64_t seq);

  Connection& conn_;
  uint16_t id_;
  bool closing_ = false;
  bool releasing_ = false;  // Release() ran: consumers take nothing more
  bool flow_ = true;
  std::string last_queue_;
  // Content assembly.
  std::optional<BasicPublish> publishing_;
  broker::MutableMessagePtr building_;
  uint64_t body_expected_ = 0;
  // Consumers and deliveries.
  std::map<std::string, std::unique_ptr<ChannelConsumer>> consumers_;
  TagLog<Unacked> unacked_;
  uint64_t next_tag_ = 1;
  uint16_t prefetch_default_ = 0;
  uint16_t prefetch_global_ = 0;
  // Direct reply-to: this channel's reply pseudo-queue while it has a reply consumer.
  broker::QueuePtr reply_queue_;
  // Confirms and transactions.
  bool confirm_ = false;
  uint64_t publish_seq_ = 0;
  uint64_t confirmed_seq_ = 0;
  // Publishes (confirm seq, storage epoch) that wait for an fdatasync, oldest first.
  // Confirms not sent yet: (publish seq, storage epoch to wait for or 0, nack).
  struct Waiting {
    uint64_t seq;
    uint64_t epoch;
    bool nack;
  };
  std::deque<Waiting> waiting_;
  // The reply to a method that changed durable state (declare, bind, delete, tx.commit with
  // persistent messages) is held until the epoch it needs is synced; 0 = none.
  uint64_t held_epoch_ = 0;
  ByteBuffer held_reply_;
  bool tx_ = false;
  std::vector<TxPublish> tx_publishes_;
  std::vector<TxAck> tx_acks_;
};

class Connection : public ProtocolHandler,
                   public storage::SyncListener,
                   public storage::AlarmListener,
                   public MemoryAlarm::Listener {
 public:
  Connection(Transport& t, broker::Broker& b, SessionConfig cfg);
  ~Connection() override;

  size_t OnData(std::span<const std::byte> data) override;
  ByteBuffer& Output() override { return out_; }
  void OnTick(std::chrono::steady_clock::time_point now) override;
  void OnClosed() override;
  void OnSynced() override;
  // Disk alarm: publishing connections are told (connection.blocked) and stop being read at
  // their next basic.publish; consumers carry on.
  void OnDiskAlarm(bool on) override;
  // Memory alarm: the same, with reason "low on memory".
  void OnMemoryAlarm(bool on) override;
  void OnOutputDrained() override;
  void OnServerShutdown() override;

  // The write buffer is above its bound: consumers take no deliveries until it drains.
  bool WriteBufferFull() {
    if (t_.pending_output() <= cfg_.write_buffer_bytes) return false;
    dispatch_paused_ = true;
    return true;
  }
  // A channel waits for storage: be told when the sync thread makes progress.
  void WantSync();
  // Stop parsing frames (after a tx.commit that waits for storage) until Resume().
  void Pause() { paused_ = true; }
  storage::Store* store() const { return broker_.store(); }

  Transport& transport() { return t_; }
  broker::Vhost& vhost() { return *vhost_; }
  ConnectionId id() const { return t_.id(); }
  uint32_t frame_max() const { return frame_max_; }
  const SessionConfig& config() const { return cfg_; }
  bool cancel_notify() const { return cancel_notify_; }
  const std::string& user() const { return user_; }
  // Consumers removed while the queue is iterating them die here, later.
  std::vector<std::unique_ptr<ChannelConsumer>> graveyard;

  template <typename M>
  void Send(uint16_t channel, const M& m) {
    WriteMethod(out_, channel, m);
  }

 private:
  enum class State { kHeader, kStartOk, kTuneOk, kOpen, kRunning, kClosing, kClosed };
  void HandleFrame(const Frame& f);
  std::optional<Close> HandleConnectionMethod(const Method& m);
  void ConnectionError(const Close& c);
  void ChannelError(Channel& ch, const Close& c);
  void ReleaseAll();
  void AwaitPeerClose();
  void Log(const Close& c, uint16_t channel);
  bool AlarmOn() const;
  void OnAlarmChange();
  void SendBlocked();

  Transport& t_;
  broker::Broker& broker_;
  SessionConfig cfg_;
  broker::Vhost* vhost_ = nullptr;
  State state_ = State::kHeader;
  FrameReader reader_{4096};
  ByteBuffer out_;
  uint32_t frame_max_ = 4096;
  uint16_t channel_max_ = 0;
  uint16_t heartbeat_ = 0;
  bool cancel_notify_ = false;
  bool auth_failure_close_ = false;
  std::string user_;
  std::map<uint16_t, std::unique_ptr<Channel>> channels_;
  std::chrono::steady_clock::time_point last_read_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_heartbeat_sent_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point closing_since_{};
  bool released_ = false;
  bool awaiting_peer_close_ = false;
  bool paused_ = false;
  bool sync_listener_ = false;
  bool blocked_capability_ = false;
  bool published_ = false;        // has sent a basic.publish
  bool blocked_sent_ = false;     // connection.blocked sent, unblocked not yet
  bool alarm_paused_ = false;     // stopped reading at a basic.publish while the alarm is on
  bool dispatch_paused_ = false;  // a consumer was refused a delivery: write buffer full
  std::chrono::steady_clock::time_point accepted_at_ = std::chrono::steady_clock::now();
};

}  // namespace warren::amqp
