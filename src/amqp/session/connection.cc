#include <cstring>

#include "amqp/codec/field_table_codec.h"
#include "amqp/codec/frame_writer.h"
#include "amqp/session/session.h"
#include "base/logging.h"

namespace warren::amqp {

namespace {

// A reference, not a copy: no shared_ptr temporaries on every log call.
const std::shared_ptr<spdlog::logger>& Logger() {
  static const std::shared_ptr<spdlog::logger> log = GetLogger("amqp");
  return log;
}

bool CapabilityOn(const FieldTable& client_props, std::string_view cap) {
  const FieldValue* caps = Find(client_props, "capabilities");
  if (caps == nullptr) return false;
  const auto* t = caps->get_if<FieldTable>();
  if (t == nullptr) return false;
  const FieldValue* v = Find(*t, cap);
  return v != nullptr && v->get_if<bool>() != nullptr && *v->get_if<bool>();
}

FieldTable ServerProperties() {
  // RabbitMQ 3.10's table, in its order (tests/integration/test_consumers.py compares the bytes).
  FieldTable caps{{"publisher_confirms", FieldValue(true)},
                  {"exchange_exchange_bindings", FieldValue(true)},
                  {"basic.nack", FieldValue(true)},
                  {"consumer_cancel_notify", FieldValue(true)},
                  {"connection.blocked", FieldValue(true)},
                  {"consumer_priorities", FieldValue(true)},
                  {"authentication_failure_close", FieldValue(true)},
                  {"per_consumer_qos", FieldValue(true)},
                  {"direct_reply_to", FieldValue(true)}};
  return FieldTable{{"capabilities", FieldValue(std::move(caps))},
                    {"product", FieldValue("Warren")},
                    {"version", FieldValue("0.1.0")},
                    {"cluster_name", FieldValue("warren")},
                    {"platform", FieldValue("C++20")},
                    {"copyright", FieldValue("The Warren developers")},
                    {"information", FieldValue("AMQP 0-9-1 broker, RabbitMQ-compatible")}};
}

// PLAIN: "\0user\0password"; AMQPLAIN: a field table without its length prefix.
bool ParseCredentials(const ConnectionStartOk& m, std::string& user, std::string& pass) {
  if (m.mechanism == "PLAIN") {
    const std::string& r = m.response;
    size_t a = r.find('\0');
    if (a == std::string::npos) return false;
    size_t b = r.find('\0', a + 1);
    if (b == std::string::npos) return false;
    user = r.substr(a + 1, b - a - 1);
    pass = r.substr(b + 1);
    return true;
  }
  if (m.mechanism == "AMQPLAIN") {
    ByteBuffer buf;
    buf.PutU32(static_cast<uint32_t>(m.response.size()));
    buf.PutString(m.response);
    auto t = DecodeFieldTable(buf.span());
    if (!t) return false;
    const FieldValue* u = Find(t.value(), "LOGIN");
    const FieldValue* p = Find(t.value(), "PASSWORD");
    if (!u || !p || !u->AsString() || !p->AsString()) return false;
    user = *u->AsString();
    pass = *p->AsString();
    return true;
  }
  return false;
}

bool IsBasicPublish(const Frame& f) {
  return f.type == kFrameMethodType && f.payload.size() >= 4 &&
         LoadU16(f.payload.data()) == BasicPublish::kClassId &&
         LoadU16(f.payload.data() + 2) == BasicPublish::kMethodId;
}

}  // namespace

std::unique_ptr<ProtocolHandler> MakeAmqpHandler(Transport& t, broker::Broker& b,
                                                 const SessionConfig& cfg) {
  return std::make_unique<Connection>(t, b, cfg);
}

Connection::Connection(Transport& t, broker::Broker& b, SessionConfig cfg)
    : t_(t), broker_(b), cfg_(cfg) {}

Connection::~Connection() {
  ReleaseAll();
  if (store() != nullptr) {
    if (sync_listener_) store()->RemoveListener(this);
    store()->RemoveAlarmListener(this);
  }
  if (cfg_.memory_alarm != nullptr) cfg_.memory_alarm->RemoveListener(this);
}

bool Connection::AlarmOn() const {
  return (store() != nullptr && store()->disk_alarm()) ||
         (cfg_.memory_alarm != nullptr && cfg_.memory_alarm->on());
}

// connection.blocked with RabbitMQ's words for the alarms that are on.
void Connection::SendBlocked() {
  const bool memory = cfg_.memory_alarm != nullptr && cfg_.memory_alarm->on();
  const bool disk = store() != nullptr && store()->disk_alarm();
  ConnectionBlocked b;
  // "low on " + the resources joined by " & ".
  b.reason = memory && disk ? "low on memory & disk" : memory ? "low on memory" : "low on disk";
  Send(0, b);
  blocked_sent_ = true;
}

void Connection::OnDiskAlarm(bool) { OnAlarmChange(); }
void Connection::OnMemoryAlarm(bool) { OnAlarmChange(); }

void Connection::OnAlarmChange() {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  if (AlarmOn()) {
    if (published_ && blocked_capability_ && !blocked_sent_) {
      SendBlocked();
      t_.RequestFlush();
    }
    return;
  }
  if (blocked_sent_) {
    Send(0, ConnectionUnblocked{});
    blocked_sent_ = false;
    t_.RequestFlush();
  }
  if (alarm_paused_) {
    alarm_paused_ = false;
    if (!paused_) t_.SetReading(true);
  }
}

void Connection::OnOutputDrained() {
  if (!dispatch_paused_ || state_ != State::kRunning) return;
  if (t_.pending_output() > cfg_.write_buffer_bytes) return;
  dispatch_paused_ = false;
  if (vhost_ != nullptr) vhost_->Tick();  // deliveries below are stamped with the turn's clock
  // Copy the ids: a dispatch can close a channel (never today, but cheap to be safe).
  std::vector<uint16_t> ids;
  for (auto& [id, ch] : channels_) ids.push_back(id);
  for (uint16_t id : ids) {
    auto it = channels_.find(id);
    if (it != channels_.end()) it->second->DispatchAll();
  }
}

void Connection::OnServerShutdown() {
  if (state_ == State::kRunning || state_ == State::kOpen) {
    // RabbitMQ 3.10 on `rabbitmqctl stop` / SIGTERM.
    const Close c =
        MakeClose(kConnectionForced, "broker forced connection closure with reason 'shutdown'");
    ReleaseAll();
    ConnectionClose close;
    close.reply_code = c.reply_code;
    close.reply_text = c.reply_text;
    Send(0, close);
  }
  state_ = State::kClosed;
  t_.CloseAfterFlush();
}

void Connection::WantSync() {
  if (sync_listener_ || store() == nullptr) return;
  store()->AddListener(this);
  sync_listener_ = true;
}

void Connection::OnSynced() {
  if (state_ == State::kClosed) return;
  std::vector<std::pair<Channel*, Close>> errors;
  bool waiting = false;
  bool reply_held = false;
  for (auto& [id, ch] : channels_) {
    if (auto c = ch->OnSynced()) errors.emplace_back(ch.get(), *c);
    waiting = waiting || ch->WaitingForSync();
    reply_held = reply_held || ch->ReplyHeld();
  }
  for (auto& [ch, c] : errors) {
    if (c.hard()) {
      ConnectionError(c);
      return;
    }
    ChannelError(*ch, c);
  }
  if (!waiting) {
    store()->RemoveListener(this);
    sync_listener_ = false;
  }
  if (paused_ && !reply_held) {
    paused_ = false;
    if (!alarm_paused_) t_.SetReading(true);  // net passes the frames it holds again
  }
  t_.RequestFlush();
}

size_t Connection::OnData(std::span<const std::byte> data) {
  graveyard.clear();
  if (state_ == State::kClosed) return data.size();
  if (vhost_ != nullptr) vhost_->Tick();  // the broker clock: once per read, not per message
  last_read_ = std::chrono::steady_clock::now();
  size_t pos = 0;
  if (state_ == State::kHeader) {
    const HeaderCheck check = CheckProtocolHeader(data);
    if (check == HeaderCheck::kNeedMore) return 0;
    if (check == HeaderCheck::kBad) {
      out_.PutBytes(kProtocolHeader, sizeof kProtocolHeader);
      Logger()->info("{}: bad protocol header, answered with AMQP 0-9-1's", t_.peer());
      state_ = State::kClosed;
      t_.CloseAfterFlush();
      return data.size();
    }
    pos = 8;
    ConnectionStart start;
    start.version_major = 0;
    start.version_minor = 9;
    start.server_properties = ServerProperties();
    start.mechanisms = "PLAIN AMQPLAIN";
    start.locales = "en_US";
    Send(0, start);
    state_ = State::kStartOk;
  }
  while (pos < data.size() && state_ != State::kClosed && !paused_ && !alarm_paused_) {
    ParseResult r = reader_.Next(data.subspan(pos));
    if (std::holds_alternative<NeedMore>(r)) break;
    if (auto* c = std::get_if<Close>(&r)) {
      ConnectionError(*c);
      return data.size();
    }
    auto& parsed = std::get<FrameParsed>(r);
    if (IsBasicPublish(parsed.frame)) {
      published_ = true;
      if (AlarmOn()) {
        // Blocked: this publish and everything after it wait in the socket buffers.
        if (blocked_capability_ && !blocked_sent_) SendBlocked();
        alarm_paused_ = true;
        break;
      }
    }
    pos += parsed.consumed;
    HandleFrame(parsed.frame);
  }
  for (auto& [id, ch] : channels_) {
    ch->FlushConfirms();
    if (ch->WaitingForSync()) WantSync();
  }
  // The records behind this batch (appends, acks) reach the files before its replies are
  // written: once a client has seen a reply, a kill -9 cannot take back what preceded it.
  if (store() != nullptr) store()->WriteBuffered();
  if (state_ == State::kClosed || state_ == State::kClosing) return data.size();
  if (paused_ || alarm_paused_) t_.SetReading(false);
  return pos;
}

void Connection::HandleFrame(const Frame& f) {
  if (f.type == kFrameHeartbeatType) {
    // RabbitMQ 3.10: a heartbeat with a payload is an unknown frame (501), one on a channel
    // is unexpected (505).
    if (state_ == State::kClosing) return;
    if (!f.payload.empty()) {
      ConnectionError(MakeClose(kFrameError, "type 8, heartbeat frame with a payload of " +
                                                 std::to_string(f.payload.size()) +
                                                 " bytes: unknown_frame"));
    } else if (f.channel != 0) {
      ConnectionError(MakeClose(kUnexpectedFrame,
                                "type 8, heartbeat frame on channel " + std::to_string(f.channel)));
    }
    return;
  }
  if (state_ == State::kClosing) {
    // After connection.close only close-ok (or a crossing close) matters.
    if (f.type == kFrameMethodType && f.channel == 0) {
      auto m = DecodeMethod(f.payload);
      if (m && (std::holds_alternative<ConnectionCloseOk>(m.value()) ||
                std::holds_alternative<ConnectionClose>(m.value()))) {
        if (std::holds_alternative<ConnectionClose>(m.value())) {
          Send(0, ConnectionCloseOk{});
          AwaitPeerClose();
          return;
        }
        state_ = State::kClosed;
        t_.CloseAfterFlush();
      }
    }
    return;
  }
  if (f.channel == 0) {
    if (f.type != kFrameMethodType) {
      ConnectionError(MakeClose(kUnexpectedFrame, "expected method frame on channel 0"));
      return;
    }
    auto m = DecodeMethod(f.payload);
    if (!m) {
      ConnectionError(m.error());
      return;
    }
    if (auto err = HandleConnectionMethod(m.value())) ConnectionError(*err);
    return;
  }
  if (state_ != State::kRunning) {
    ConnectionError(MakeClose(kCommandInvalid, "connection not open"));
    return;
  }
  auto it = channels_.find(f.channel);
  if (f.type == kFrameMethodType) {
    auto m = DecodeMethod(f.payload);
    if (!m) {
      ConnectionError(m.error());
      return;
    }
    if (std::holds_alternative<ChannelOpen>(m.value())) {
      if (it != channels_.end()) {
        ConnectionError(MakeClose(kChannelError, "second 'channel.open' seen", 20, 10));
        return;
      }
      // channel_max bounds how many channels are open, not their numbers (RabbitMQ 3.x). The
      // close names no method (checked against 3.10).
      if (channels_.size() >= channel_max_) {
        ConnectionError(MakeClose(kNotAllowed, "number of channels opened (" +
                                                   std::to_string(channels_.size()) +
                                                   ") has reached the negotiated channel_max (" +
                                                   std::to_string(channel_max_) + ")"));
        return;
      }
      channels_.emplace(f.channel, std::make_unique<Channel>(*this, f.channel));
      Send(f.channel, ChannelOpenOk{});
      return;
    }
    if (it == channels_.end()) {
      const MethodInfo* info =
          FindMethodInfo(LoadU16(f.payload.data()), LoadU16(f.payload.data() + 2));
      ConnectionError(MakeClose(kChannelError, "expected 'channel.open'", info ? info->class_id : 0,
                                info ? info->method_id : 0));
      return;
    }
    Channel& ch = *it->second;
    if (ch.closing()) {
      // After channel.close we drop everything on the channel but close / close-ok.
      if (std::holds_alternative<ChannelCloseOk>(m.value())) {
        channels_.erase(it);
      } else if (std::holds_alternative<ChannelClose>(m.value())) {
        Send(f.channel, ChannelCloseOk{});
      }
      return;
    }
    if (std::holds_alternative<ChannelClose>(m.value())) {
      ch.Release();
      Send(f.channel, ChannelCloseOk{});
      channels_.erase(it);
      return;
    }
  } else if (it == channels_.end()) {
    ConnectionError(MakeClose(kChannelError, "expected 'channel.open'"));
    return;
  } else if (it->second->closing()) {
    return;
  }
  Channel& ch = *channels_.at(f.channel);
  if (auto err = ch.OnFrame(f)) {
    if (err->hard()) {
      ConnectionError(*err);
    } else {
      ChannelError(ch, *err);
    }
  }
}

std::optional<Close> Connection::HandleConnectionMethod(const Method& m) {
  if (const auto* start_ok = std::get_if<ConnectionStartOk>(&m)) {
    if (state_ != State::kStartOk) return MakeClose(kCommandInvalid, "unexpected start-ok", 10, 11);
    cancel_notify_ = CapabilityOn(start_ok->client_properties, "consumer_cancel_notify");
    auth_failure_close_ = CapabilityOn(start_ok->client_properties, "authentication_failure_close");
    blocked_capability_ = CapabilityOn(start_ok->client_properties, "connection.blocked");
    if (store() != nullptr) store()->AddAlarmListener(this);
    if (cfg_.memory_alarm != nullptr) cfg_.memory_alarm->AddListener(this);
    if (start_ok->mechanism != "PLAIN" && start_ok->mechanism != "AMQPLAIN") {
      return MakeClose(kCommandInvalid,
                       "unknown authentication mechanism '" + start_ok->mechanism + "'", 10, 11);
    }
    std::string user, pass;
    const bool parsed = ParseCredentials(*start_ok, user, pass);
    if (parsed && user == "guest" && pass == "guest" && !t_.peer_is_loopback()) {
      Logger()->warn("{}: user 'guest' can only connect via localhost", t_.peer());
      return MakeClose(kAccessRefused, "user 'guest' - User can only log in via localhost", 10, 11);
    }
    if (!parsed || user != "guest" || pass != "guest") {
      Logger()->warn("{}: login refused for user '{}' ({})", t_.peer(), user, start_ok->mechanism);
      if (!auth_failure_close_) {
        state_ = State::kClosed;
        t_.CloseAfterFlush();
        return std::nullopt;
      }
      return MakeClose(kAccessRefused,
                       "Login was refused using authentication mechanism " + start_ok->mechanism +
                           ". For details see the broker logfile.",
                       10, 11);
    }
    user_ = user;
    ConnectionTune tune;
    tune.channel_max = cfg_.channel_max;
    tune.frame_max = cfg_.frame_max;
    tune.heartbeat = cfg_.heartbeat;
    Send(0, tune);
    state_ = State::kTuneOk;
    return std::nullopt;
  }
  if (const auto* tune_ok = std::get_if<ConnectionTuneOk>(&m)) {
    if (state_ != State::kTuneOk) return MakeClose(kCommandInvalid, "unexpected tune-ok", 10, 31);
    if (tune_ok->frame_max < 4096) {
      return MakeClose(kNotAllowed,
                       "negotiated frame_max = " + std::to_string(tune_ok->frame_max) +
                           " is lower than the minimum allowed value (4096)",
                       10, 31);
    }
    if (tune_ok->frame_max > cfg_.frame_max) {
      return MakeClose(kNotAllowed,
                       "negotiated frame_max = " + std::to_string(tune_ok->frame_max) +
                           " is higher than the maximum allowed value (" +
                           std::to_string(cfg_.frame_max) + ")",
                       10, 31);
    }
    if (tune_ok->channel_max == 0 || tune_ok->channel_max > cfg_.channel_max) {
      return MakeClose(kNotAllowed,
                       "negotiated channel_max = " + std::to_string(tune_ok->channel_max) +
                           " is higher than the maximum allowed value (" +
                           std::to_string(cfg_.channel_max) + ")",
                       10, 31);
    }
    frame_max_ = tune_ok->frame_max;
    channel_max_ = tune_ok->channel_max;
    heartbeat_ = tune_ok->heartbeat;
    reader_.set_frame_max(frame_max_);
    state_ = State::kOpen;
    return std::nullopt;
  }
  if (const auto* open = std::get_if<ConnectionOpen>(&m)) {
    if (state_ != State::kOpen) return MakeClose(kCommandInvalid, "unexpected open", 10, 40);
    vhost_ = broker_.FindVhost(open->virtual_host);
    if (vhost_ == nullptr) {
      // RabbitMQ 3.10's text for a vhost that does not exist.
      return MakeClose(kNotAllowed, "vhost " + open->virtual_host + " not found", 10, 40);
    }
    Send(0, ConnectionOpenOk{});
    state_ = State::kRunning;
    Logger()->debug("{}: connection open, user '{}', vhost '{}'", t_.peer(), user_,
                    open->virtual_host);
    return std::nullopt;
  }
  if (std::holds_alternative<ConnectionClose>(m)) {
    ReleaseAll();
    Send(0, ConnectionCloseOk{});
    AwaitPeerClose();
    return std::nullopt;
  }
  if (std::holds_alternative<ConnectionCloseOk>(m)) {
    state_ = State::kClosed;
    t_.CloseAfterFlush();
    return std::nullopt;
  }
  const MethodInfo* info =
      std::visit([](const auto& x) { return FindMethodInfo(x.kClassId, x.kMethodId); }, m);
  return MakeClose(kCommandInvalid,
                   std::string("unexpected method on channel 0: ") + (info ? info->name : "?"),
                   info ? info->class_id : 0, info ? info->method_id : 0);
}

void Connection::Log(const Close& c, uint16_t channel) {
  Logger()->warn("{}: closing {} {}: {} {} (class {}, method {})", t_.peer(),
                 c.hard() ? "connection" : "channel", channel, c.reply_code, c.reply_text,
                 c.class_id, c.method_id);
}

void Connection::ConnectionError(const Close& c) {
  Log(c, 0);
  ReleaseAll();
  ConnectionClose close;
  close.reply_code = c.reply_code;
  close.reply_text = c.reply_text;
  close.class_id = c.class_id;
  close.method_id = c.method_id;
  Send(0, close);
  state_ = State::kClosing;
  closing_since_ = std::chrono::steady_clock::now();
  t_.RequestFlush();
}

void Connection::ChannelError(Channel& ch, const Close& c) {
  Log(c, ch.id());
  ch.Release();
  ch.MarkClosing();
  ChannelClose close;
  close.reply_code = c.reply_code;
  close.reply_text = c.reply_text;
  close.class_id = c.class_id;
  close.method_id = c.method_id;
  Send(ch.id(), close);
}

void Connection::OnTick(std::chrono::steady_clock::time_point now) {
  graveyard.clear();
  using std::chrono::seconds;
  if (awaiting_peer_close_ && now - closing_since_ > seconds(10)) {
    awaiting_peer_close_ = false;
    t_.CloseAfterFlush();
    return;
  }
  if (state_ == State::kClosing && now - closing_since_ > seconds(3)) {
    state_ = State::kClosed;
    t_.Abort();
    return;
  }
  if (state_ == State::kHeader || state_ == State::kStartOk || state_ == State::kTuneOk ||
      state_ == State::kOpen) {
    if (now - accepted_at_ > cfg_.handshake_timeout) {
      // RabbitMQ 3.10 drops the socket without a connection.close ({handshake_timeout, ...}).
      Logger()->warn("{}: closing connection: handshake timeout ({} ms) in state {}", t_.peer(),
                     cfg_.handshake_timeout.count(), static_cast<int>(state_));
      state_ = State::kClosed;
      t_.Abort();
      return;
    }
  }
  if (state_ == State::kRunning && cfg_.consumer_timeout.count() != 0) {
    std::vector<std::pair<Channel*, Close>> expired;
    for (auto& [id, ch] : channels_) {
      if (auto c = ch->CheckConsumerTimeout(now, cfg_.consumer_timeout)) {
        expired.emplace_back(ch.get(), *c);
      }
    }
    if (!expired.empty() && vhost_ != nullptr) vhost_->Tick();  // requeues may deliver
    for (auto& [ch, c] : expired) ChannelError(*ch, c);
    if (!expired.empty()) t_.RequestFlush();
  }
  if (state_ != State::kRunning && state_ != State::kOpen) return;
  if (heartbeat_ == 0) return;
  // Not reading (blocked publisher, held reply): the peer's heartbeats wait unread in the socket,
  // so silence is not a dead peer (RabbitMQ also stops heartbeat monitoring when blocked).
  if (paused_ || alarm_paused_) last_read_ = now;
  if (now - last_read_ > seconds(2 * heartbeat_)) {
    Logger()->warn("{}: missed heartbeats from client, timeout: {}s", t_.peer(), heartbeat_);
    state_ = State::kClosed;
    t_.Abort();
    return;
  }
  const auto interval = seconds(heartbeat_ >= 2 ? heartbeat_ / 2 : 1);
  if (now - last_heartbeat_sent_ >= interval) {
    WriteHeartbeat(out_);
    last_heartbeat_sent_ = now;
    t_.RequestFlush();
  }
}

// After our close-ok the client closes the socket; frames it still sends (amqplib flushes
// queued acks after its close) are ignored. RabbitMQ does the same, with a timeout.
void Connection::AwaitPeerClose() {
  state_ = State::kClosed;
  awaiting_peer_close_ = true;
  closing_since_ = std::chrono::steady_clock::now();
  t_.RequestFlush();
}

void Connection::ReleaseAll() {
  if (released_) return;
  released_ = true;
  for (auto& [id, ch] : channels_) ch->Release();
  if (vhost_ != nullptr) vhost_->OnConnectionClosed(t_.id());
}

void Connection::OnClosed() {
  ReleaseAll();
  channels_.clear();
  state_ = State::kClosed;
}

}  // namespace warren::amqp
