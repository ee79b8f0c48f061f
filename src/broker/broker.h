#pragma once
// The protocol-independent broker core: one vhost "/" with exchanges, queues, bindings,
// routing, consumers and delivery. AMQP (and later MQTT/STOMP) sessions call this API.
//
// Threading: single-threaded; every call happens on the one shard thread
// (docs/decisions/0001-one-shard-first.md). No locks.
// Lifetime: queues are shared_ptr-owned by the vhost; sessions may hold shared_ptr<Queue> for
// unacked deliveries, and a deleted queue stays alive (marked deleted) until they let go.
// Errors are values: {reply_code, explanation}; the session adds RabbitMQ's "NAME - " prefix
// and the class/method ids of the failing method.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "amqp/codec/field_table.h"
#include "base/memory.h"
#include "base/strong_id.h"
#include "broker/consumer_set.h"
#include "broker/queue_args.h"
#include "broker/ready_list.h"
#include "storage/store.h"

namespace warren::broker {

struct Error {
  uint16_t reply_code = 0;
  std::string text;  // without the "NOT_FOUND - " prefix
};
template <typename T>
struct Result {
  std::optional<T> value;
  std::optional<Error> error;
  bool ok() const { return !error.has_value(); }
};

// An immutable message as published: property bytes exactly as received (re-sent unchanged on
// delivery) and the body. Shared by every queue it was routed to and every delivery of it,
// through an intrusive, non-atomic reference count: messages live on the shard thread only, and
// the pointer is 8 bytes (a queue entry fits 40) with no atomic operation per copy.
struct Message : boost::intrusive_ref_counter<Message, boost::thread_unsafe_counter> {
  std::string exchange;
  std::string routing_key;
  // The content-header property flags + list (raw), then the body: one allocation.
  std::vector<std::byte> data;
  size_t properties_size = 0;
  std::optional<amqp::FieldTable> headers;  // decoded once, for headers-exchange routing
  // Sender-selected distribution: the CC and BCC header keys, routed like routing_key.
  std::vector<std::string> extra_routing_keys;
  uint8_t delivery_mode = 1;
  uint8_t priority = 0;  // the `priority` property (0 when absent)
  // The `expiration` property, validated (ms). Queues without TTL features test only this.
  std::optional<uint64_t> expiration_ms;

  std::span<const std::byte> properties() const { return {data.data(), properties_size}; }
  std::span<const std::byte> body() const {
    return std::span<const std::byte>(data).subspan(properties_size);
  }
  size_t body_size() const { return data.size() - properties_size; }
  // Replaces the property bytes; only before the body is appended.
  void SetProperties(std::span<const std::byte> raw) {
    data.assign(raw.begin(), raw.end());
    properties_size = raw.size();
  }
};
using MessagePtr = boost::intrusive_ptr<const Message>;
using MutableMessagePtr = boost::intrusive_ptr<Message>;
inline MutableMessagePtr MakeMessage() { return MutableMessagePtr(new Message()); }

// The `priority` property of a message's property bytes (0 when absent or unreadable).
uint8_t PriorityOf(const Message& m);

struct QueueEntry {
  // Null while paged out: the message is only in the queue's segment log (at `loc`) and is read
  // back when it is delivered.
  MessagePtr message;
  uint64_t seq = 0;       // arrival order; requeued entries go back to their place by seq
  storage::Location loc;  // where a persistent message is in a durable queue's log
  bool redelivered = false;
  uint8_t priority = 0;     // capped at the queue's x-max-priority; 0 in other queues
  uint64_t expires_at = 0;  // Unix ms after which it is dead-lettered/dropped; 0 = never
};
// The plain path moves entries through deques: keep them at 40 bytes (docs/queues.md,
// "Performance").
static_assert(sizeof(QueueEntry) == 40);

// A page-file record (docs/formats/paging-v1.md; paging.cc): the entry whole (`whole`) or its
// position in the queue's segment log. Decode returns false for bytes Encode did not write.
void EncodePageEntry(ByteBuffer& out, const QueueEntry& e, bool whole);
bool DecodePageEntry(std::span<const std::byte> payload, QueueEntry& e);

// Broker-wide settings (from config).
struct BrokerOptions {
  // A queue keeps at most about this many bytes of ready messages in memory (bodies plus a
  // per-message overhead); beyond it new messages are paged out to disk and read back in order
  // (paging.cc, docs/queues.md "Paging").
  uint64_t queue_memory_bytes = 64u << 20;
  // Queues per vhost (RabbitMQ's vhost max-queues limit); 0 = unlimited. Queues recovered at
  // start are not refused.
  uint32_t max_queues = 0;
  // Runs the expiry timers (message TTL, x-expires). Without it (unit tests) messages expire
  // only when they reach the head or Vhost::RunTimersForTest() is called.
  boost::asio::io_context* io = nullptr;
};

class Queue;

// Implemented by a protocol session for each subscription (AMQP basic.consume).
class Consumer {
 public:
  virtual ~Consumer() = default;
  // Prefetch credit and flow: false skips this consumer for now (it never stalls others).
  virtual bool CanAccept() const = 0;
  // Takes the entry; the session writes the delivery and keeps the entry until it is acked
  // (or drops it at once for no-ack consumers).
  virtual void Deliver(const std::shared_ptr<Queue>& queue, QueueEntry entry) = 0;
  // The queue was deleted under the consumer (AMQP: server-sent basic.cancel).
  virtual void OnQueueDeleted() = 0;
};

class Vhost;

// Why a message left a queue for its dead-letter exchange (the x-death `reason`).
enum class DeathReason { kRejected, kExpired, kMaxLen };

class Queue : public std::enable_shared_from_this<Queue> {
 public:
  Queue(std::string name, bool durable, bool auto_delete, std::optional<ConnectionId> owner,
        amqp::FieldTable args, uint64_t memory_bytes = 64u << 20)
      : name_(std::move(name)),
        durable_(durable),
        auto_delete_(auto_delete),
        owner_(owner),
        args_(std::move(args)),
        memory_bytes_(memory_bytes),
        budget_(memory_bytes) {}

  const std::string& name() const { return name_; }
  bool durable() const { return durable_; }
  bool auto_delete() const { return auto_delete_; }
  const std::optional<ConnectionId>& owner() const { return owner_; }
  const amqp::FieldTable& args() const { return args_; }
  // This queue's entry in definitions.json, rendered at its first export (definitions.cc); what
  // it shows (name, auto_delete, arguments) never changes.
  std::string& definition_text() const { return definition_text_; }
  // Parsed arguments (queue_args.h) and the vhost that dead-letters and schedules expiry for
  // this queue. Called once, before the first message.
  void Configure(const QueueSettings& settings, Vhost* vhost);
  const QueueSettings& settings() const { return settings_; }
  // QueueSettings::Features(): 0 for a plain queue.
  uint32_t features() const { return features_; }
  bool deleted() const { return deleted_; }
  // Ready messages, in memory and paged out.
  size_t message_count() const { return ready_.size() + paged_; }
  size_t consumer_count() const { return consumers_.size(); }
  // Who gets the next message (priorities, single active consumer): consumer_set.h.
  ConsumerSet& consumers() { return consumers_; }
  const ConsumerSet& consumers() const { return consumers_; }
  // Estimated memory held by ready messages (entries, message objects and bytes; paged-out
  // ones not counted).
  uint64_t resident_bytes() const { return resident_bytes_; }
  // Ready messages waiting in page files on disk.
  uint64_t paged_count() const { return paged_; }

  // Durable queues: the segment log that keeps their persistent messages.
  void AttachLog(std::unique_ptr<storage::QueueLog> log) { log_ = std::move(log); }
  storage::QueueLog* log() const { return log_.get(); }
  std::unique_ptr<storage::QueueLog> TakeLog() { return std::move(log_); }
  // At start: the log's surviving messages become the queue (recovered ones that had been
  // delivered come back redelivered).
  // `max_seq` is the largest seq the log has ever recorded: numbering continues above it.
  void Restore(const std::vector<storage::RecoveredMessage>& messages, uint64_t max_seq);

  // Returns false if the queue refused the message (x-overflow reject-publish*): the publisher
  // gets a basic.nack in confirm mode.
  bool Enqueue(MessagePtr m);
  // The entry left the queue for good (acked, rejected without requeue, no-ack delivery).
  void Settle(const QueueEntry& e);
  // Rejected or nacked without requeue: settled, then dead-lettered if the queue has a DLX.
  void Reject(QueueEntry e);
  // Timer callback (Vhost): expires due messages; deletes the queue if x-expires is due.
  void OnTimer(uint64_t now_ms);
  // Something used the queue (redeclare, basic.get, consume): restarts the x-expires period.
  void Touch();
  // Delivers ready messages to the consumers ConsumerSet::Next() picks.
  void Dispatch() {
    // Nothing to hand out or nobody to take it (every publish to a queue without consumers):
    // an inline test, no call.
    if (!ready_.empty() && !consumers_.empty()) DispatchReady();
  }
  // Puts entries back in arrival order, marked redelivered, then dispatches.
  void Requeue(std::vector<QueueEntry> entries);
  std::optional<QueueEntry> Get();
  size_t Purge();

  void AddConsumer(Consumer* c, bool exclusive, int64_t priority = 0);
  // Returns true if this was the last consumer of an auto-delete queue (caller deletes it).
  bool RemoveConsumer(Consumer* c);
  bool has_exclusive_consumer() const { return consumers_.has_exclusive(); }

  // Called by the vhost on deletion: marks deleted, drops messages, tells consumers.
  size_t MarkDeleted();

  // The memory alarm (paging.cc): while it is on the queue keeps only kPressureBudget bytes of
  // ready messages in memory and pages out the rest at once.
  void SetMemoryPressure(bool on);
  static constexpr uint64_t kPressureBudget = 1u << 20;
  // Paged entries are read back when less than this is resident, about kPageInBytes at a time.
  static constexpr uint64_t kRefillBytes = 2u << 20;
  static constexpr size_t kPageInBytes = 512u << 10;

 private:
  // Reads a paged-out message back from the log; false if it cannot be (logged, dropped).
  bool Load(QueueEntry& e) { return e.message || ReadBack(e); }
  bool ReadBack(QueueEntry& e);
  void DispatchReady();
  QueueEntry PopReady();
  // Paging (paging.cc). Spill: over budget, `e` goes to a page file (true) or, in a queue that
  // cannot page, a stored persistent message keeps only its position (false).
  bool Spill(QueueEntry& e);
  bool CanPage() const;
  void PageOut(QueueEntry&& e);
  void WritePage(storage::PageFile& file, const QueueEntry& e) const;
  // Estimated memory an entry holds while it is in ready_ (Track, the paging budget).
  static uint64_t EntryCost(const QueueEntry& e);
  // Moves the ready entries beyond the first kPressureBudget bytes to a page file read first.
  void PageOutTail();
  // Reads the next paged entries back into ready_.
  void PageIn();
  void DropPages();
  void Track(const QueueEntry& e, bool add);
  // The path of queues with features or messages with `expiration` (queue_features.cc).
  bool EnqueueSpecial(MessagePtr m);
  QueueEntry MakeEntry(MessagePtr m, uint64_t now_ms) const;
  bool OverLimit(uint64_t extra_messages, uint64_t extra_bytes) const;
  void DropHeads();
  // Expires ready entries due at `now_ms` (dead-lettered with reason expired).
  void ExpireDue(uint64_t now_ms);
  void ExpireHeap(uint64_t now_ms);
  bool Expired(const QueueEntry& e) const;
  void DeadLetter(QueueEntry e, DeathReason reason);
  void WatchExpiry(const QueueEntry& e);
  void ScheduleWake();
  uint64_t BodyBytes(const QueueEntry& e) const;
  std::string name_;
  bool durable_;
  bool auto_delete_;
  std::optional<ConnectionId> owner_;
  amqp::FieldTable args_;
  mutable std::string definition_text_;
  QueueSettings settings_;
  uint32_t features_ = 0;
  // Set once any entry may expire (TTL queue, or a message with `expiration`): only then does
  // Dispatch/Get compare expiry times.
  bool timed_ = false;
  Vhost* vhost_ = nullptr;
  ReadyList<QueueEntry> ready_;
  uint64_t ready_body_bytes_ = 0;  // kept for queues with x-max-length-bytes only
  // (expires_at, seq, priority) of ready entries that expire; stale ones are skipped.
  struct Expiry {
    uint64_t at;
    uint64_t seq;
    uint8_t priority;
    // Same time: arrival order, so messages expire and are dead-lettered in queue order.
    bool operator>(const Expiry& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  std::vector<Expiry> expiry_heap_;
  uint64_t wake_at_ = 0;    // the wake-up asked of the vhost (0 = none)
  uint64_t last_used_ = 0;  // x-expires: Unix ms of the last use
  ConsumerSet consumers_;
  bool had_consumer_ = false;
  bool deleted_ = false;
  bool dispatching_ = false;
  uint64_t next_seq_ = 1;
  uint64_t memory_bytes_;
  uint64_t budget_;  // memory_bytes_, or kPressureBudget while the memory alarm is on
  uint64_t resident_bytes_ = 0;
  // Ready entries beyond the budget, in arrival order after every entry of ready_: the front
  // file is read first (page_file.h).
  std::deque<std::unique_ptr<storage::PageFile>> pages_;
  uint64_t paged_ = 0;
  std::unique_ptr<storage::QueueLog> log_;
};
using QueuePtr = std::shared_ptr<Queue>;

enum class ExchangeType { kDirect, kFanout, kTopic, kHeaders };

struct Binding {
  std::string destination;
  bool to_exchange = false;
  std::string key;
  amqp::FieldTable args;
  // Its entry in definitions.json, rendered at its first export (definitions.cc).
  mutable std::string definition_text;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Topic bindings as a trie over words, so routing cost follows the key, not the number of
// bindings. Values are indexes into Exchange::bindings.
class TopicTrie {
 public:
  void Clear() { root_ = Node{}; }
  void Insert(std::string_view pattern, size_t binding);
  // Appends matching binding indexes (possibly repeated when '#' overlaps).
  void Match(std::string_view key, std::vector<size_t>& out) const;

 private:
  struct Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> words;
    std::unique_ptr<Node> star;
    std::unique_ptr<Node> hash;
    std::vector<size_t> bindings;
  };
  static void MatchFrom(const Node& n, const std::vector<std::string_view>& words, size_t i,
                        std::vector<size_t>& out);
  Node root_;
};

struct Exchange {
  std::string name;
  ExchangeType type = ExchangeType::kDirect;
  std::string type_name;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  amqp::FieldTable args;
  // Its entry in definitions.json, rendered at its first export (definitions.cc).
  mutable std::string definition_text;
  std::vector<Binding> bindings;
  // Derived from `bindings`: direct keys -> binding indexes, and the topic trie. A new
  // binding is indexed incrementally (IndexLast); a removal rebuilds the exchange's index
  // (Reindex), O(bindings of this exchange).
  std::unordered_multimap<std::string, size_t, StringHash, std::equal_to<>> direct_index;
  TopicTrie topic_index;
  void Reindex();
  void IndexLast();
};

// RabbitMQ's topic match: words split by '.', '*' matches one word, '#' zero or more.
bool TopicMatches(std::string_view pattern, std::string_view key);
// Headers-exchange match of a binding's arguments against message headers.
bool HeadersMatch(const amqp::FieldTable& binding_args, const amqp::FieldTable* headers);

// Direct reply-to's pseudo-queue.
inline constexpr std::string_view kReplyTo = "amq.rabbitmq.reply-to";

struct DeclareOk {
  std::string queue;
  uint32_t message_count = 0;
  uint32_t consumer_count = 0;
};

// Writes one list of definitions.json into `out`, an entry per line (definitions.cc).
class DefinitionList {
 public:
  explicit DefinitionList(std::string& out) : out_(out) { out_ += '['; }
  void Add(const std::string& entry) {
    out_ += empty_ ? "\n    " : ",\n    ";
    out_ += entry;
    empty_ = false;
  }
  void Close() { out_ += empty_ ? "]" : "\n  ]"; }

 private:
  std::string& out_;
  bool empty_ = true;
};

class Vhost {
 public:
  explicit Vhost(std::string name, storage::Store* store = nullptr, BrokerOptions options = {});
  const std::string& name() const { return name_; }

  std::optional<Error> ExchangeDeclare(const std::string& name, const std::string& type,
                                       bool passive, bool durable, bool auto_delete, bool internal,
                                       const amqp::FieldTable& args);
  std::optional<Error> ExchangeDelete(const std::string& name, bool if_unused);
  std::optional<Error> ExchangeBind(const std::string& destination, const std::string& source,
                                    const std::string& key, const amqp::FieldTable& args);
  std::optional<Error> ExchangeUnbind(const std::string& destination, const std::string& source,
                                      const std::string& key, const amqp::FieldTable& args);

  Result<DeclareOk> QueueDeclare(const std::string& name, bool passive, bool durable,
                                 bool exclusive, bool auto_delete, const amqp::FieldTable& args,
                                 ConnectionId conn);
  std::optional<Error> QueueBind(const std::string& queue, const std::string& exchange,
                                 const std::string& key, const amqp::FieldTable& args,
                                 ConnectionId conn);
  std::optional<Error> QueueUnbind(const std::string& queue, const std::string& exchange,
                                   const std::string& key, const amqp::FieldTable& args,
                                   ConnectionId conn);
  Result<uint32_t> QueuePurge(const std::string& queue, ConnectionId conn);
  Result<uint32_t> QueueDelete(const std::string& queue, bool if_unused, bool if_empty,
                               ConnectionId conn);

  // Routes and enqueues. Returns the number of queues the message reached. `rejected` is set
  // if a queue refused it (x-overflow reject-publish*).
  Result<size_t> Publish(const MessagePtr& message, bool* rejected = nullptr);

  // The broker clock (Unix ms), read once per loop turn: Tick() is called by sessions when
  // they start handling a read, and by the expiry timer. TTL arithmetic uses Now().
  uint64_t Now() const { return now_ms_; }
  // The same turn's monotonic time (delivery ages for consumer_timeout).
  std::chrono::steady_clock::time_point SteadyNow() const { return steady_now_; }
  void Tick();
  // Queue `q` wants OnTimer at `at_ms` (rounded up to kWakeGranularityMs).
  void ScheduleWake(const QueuePtr& q, uint64_t at_ms);
  // Runs the due wake-ups now (the timer's handler; tests without an io_context).
  void RunTimersForTest() { RunTimers(); }
  // Dead-letters a copy of `m` that left `q` (dead_letter.cc): x-death, x-first-death-*,
  // routed through q's x-dead-letter-exchange; cycles are dropped as RabbitMQ does.
  void DeadLetter(const Queue& q, const Message& m, DeathReason reason);
  // x-expires: the queue was unused for its period.
  void ExpireQueue(const QueuePtr& q);

  // The queue for consume/get, after existence and exclusivity checks.
  Result<QueuePtr> QueueForUse(const std::string& queue, ConnectionId conn);
  // `args` are basic.consume's arguments (`x-priority`).
  std::optional<Error> Consume(const QueuePtr& q, Consumer* c, bool exclusive,
                               const amqp::FieldTable& args = {});
  void Cancel(const QueuePtr& q, Consumer* c);

  // Exclusive queues of a closed connection are deleted.
  void OnConnectionClosed(ConnectionId conn);

  // Direct reply-to (direct_reply.cc): a consumer of `amq.rabbitmq.reply-to` gets a private
  // pseudo-queue "amq.rabbitmq.reply-to.<random>" outside the queue map; it is forgotten when
  // its consumer is cancelled (Cancel).
  QueuePtr CreateReplyQueue();

  QueuePtr FindQueue(const std::string& name) const;
  storage::Store* store() const { return store_; }
  // The memory alarm: every queue pages out what is above Queue::kPressureBudget.
  void SetMemoryPressure(bool on);
  bool memory_pressure() const { return memory_pressure_; }
  size_t queue_count() const { return queues_.size(); }
  const Exchange* FindExchange(const std::string& name) const;

  // Durable definitions (definitions.cc): this vhost's entries added to definitions.json's
  // lists.
  void ExportQueues(DefinitionList& out) const;
  void ExportExchanges(DefinitionList& out) const;
  void ExportBindings(DefinitionList& out) const;
  // Recreates durable entities from the lists; problems are appended to `warnings`.
  void ImportDefinitions(const nlohmann::json& doc, std::vector<std::string>& warnings);
  // Reads every durable queue's log into the queue.
  void RecoverQueues(storage::RecoveryStats& stats, std::set<std::string>& live_dirs);

 private:
  // A durable entity changed: the definitions file is written again (coalesced).
  void Changed(bool durable);
  bool IsDurableDestination(const std::string& name, bool to_exchange) const;
  std::optional<Error> CheckExclusive(const Queue& q, ConnectionId conn) const;
  void DeleteQueue(const QueuePtr& q);
  void ForgetReplyQueue(const QueuePtr& q);
  // queue.declare of "amq.rabbitmq.reply-to*" (always passive); nullopt for other names.
  std::optional<Result<DeclareOk>> DeclareReplyQueue(const std::string& name) const;
  // A publish to the default exchange whose key names a live reply queue goes to its consumer.
  // Not counted as routed: a mandatory reply also comes back NO_ROUTE (RabbitMQ 3.10).
  void DeliverReplies(const MessagePtr& message);
  void RemoveBindingsTo(const std::string& destination, bool to_exchange);
  void MaybeAutoDeleteExchange(const std::string& name);
  void Route(const Exchange& ex, const Message& m, const std::string& key, std::vector<Queue*>& out,
             std::vector<const Exchange*>& visited) const;
  std::string QueueText(const std::string& q) const;
  std::string ExchangeText(const std::string& x) const;

  std::string name_;
  storage::Store* store_;
  BrokerOptions options_;
  bool loading_ = false;
  std::unordered_map<std::string, Exchange> exchanges_;
  std::unordered_map<std::string, QueuePtr> queues_;
  std::unordered_map<std::string, QueuePtr> reply_queues_;
  // Names of exclusive queues by owning connection id.
  std::unordered_map<uint64_t, std::vector<std::string>> exclusive_;

  void RunTimers();
  void ArmTimer();
  uint64_t now_ms_ = 0;
  std::chrono::steady_clock::time_point steady_now_ = std::chrono::steady_clock::now();
  struct Wake {
    uint64_t at;
    std::weak_ptr<Queue> queue;
    bool operator>(const Wake& o) const { return at > o.at; }
  };
  std::vector<Wake> wakes_;  // min-heap by `at`
  uint64_t timer_at_ = 0;    // when the armed timer fires (0 = not armed)
  std::unique_ptr<boost::asio::steady_timer> timer_;
  int dead_letter_depth_ = 0;
  bool memory_pressure_ = false;
};

// Expiry wake-ups are grouped in slots of this many ms: a message expires at most this late
// (plus the event loop's delay).
inline constexpr uint64_t kWakeGranularityMs = 10;

class Broker : public MemoryAlarm::Listener {
 public:
  // Without a store nothing is persisted (unit tests, fuzzing).
  explicit Broker(storage::Store* store = nullptr, BrokerOptions options = {});
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;
  // nullptr if no such vhost.
  Vhost* FindVhost(const std::string& name);
  storage::Store* store() const { return store_; }
  // Queues page out their messages while the memory alarm is on.
  void OnMemoryAlarm(bool on) override;

  // The durable definitions as RabbitMQ's definitions-export JSON (docs/formats/), written
  // over `out` (whose capacity is reused).
  void ExportDefinitions(std::string& out) const;
  std::string ExportDefinitions() const {
    std::string out;
    ExportDefinitions(out);
    return out;
  }
  // At start, before any connection: loads definitions.json and every durable queue's log, and
  // logs one summary line. Returns a one-line error if the definitions file is unusable.
  std::optional<std::string> Recover();

 private:
  storage::Store* store_;
  std::map<std::string, std::unique_ptr<Vhost>> vhosts_;
};

// Field-table equality for bindings and arguments that may have come back from JSON: integers
// compare by value whatever their width.
bool TablesEquivalent(const amqp::FieldTable& a, const amqp::FieldTable& b);

}  // namespace warren::broker
