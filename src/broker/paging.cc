// Paging (docs/queues.md "Paging", bytes in docs/formats/paging-v1.md): a queue keeps about
// `queue_memory_bytes` of ready messages in memory (Queue::kPressureBudget while the memory
// alarm is on). Beyond that, new entries go to a page file, in arrival order behind every entry
// still in memory, and are read back in order as the in-memory part runs low. A transient
// message is written whole; a persistent one already in its durable queue's segment log is
// written as its position only (its bytes are read back from the log on delivery).
//
// Priority queues do not page (their order is not arrival order); there a stored persistent
// message keeps only its position in memory, as before paging existed.

#include <algorithm>

#include "base/logging.h"
#include "broker/broker.h"

namespace warren::broker {

namespace {

auto Log() {
  static auto log = GetLogger("broker");
  return log;
}

enum PageKind : uint8_t { kWholeMessage = 1, kPosition = 2 };
enum PageFlags : uint8_t { kRedelivered = 1, kPersistent = 2 };
constexpr size_t kPageHeader = 1 + 1 + 8 + 8 + 12;

}  // namespace

void EncodePageEntry(ByteBuffer& out, const QueueEntry& e, bool whole) {
  out.PutU8(whole ? kWholeMessage : kPosition);
  const bool persistent = e.message ? e.message->delivery_mode == 2 : e.loc.stored();
  out.PutU8(
      static_cast<uint8_t>((e.redelivered ? kRedelivered : 0) | (persistent ? kPersistent : 0)));
  out.PutU64(e.seq);
  out.PutU64(e.expires_at);
  out.PutU32(e.loc.segment);
  out.PutU32(e.loc.offset);
  out.PutU32(e.loc.size);
  if (!whole) return;
  const Message& m = *e.message;
  const auto ex = std::string_view(m.exchange).substr(0, 255);
  const auto rk = std::string_view(m.routing_key).substr(0, 255);
  out.PutU8(static_cast<uint8_t>(ex.size()));
  out.PutString(ex);
  out.PutU8(static_cast<uint8_t>(rk.size()));
  out.PutString(rk);
  out.PutU32(static_cast<uint32_t>(m.properties_size));
  out.PutBytes(m.data.data(), m.data.size());
}

bool DecodePageEntry(std::span<const std::byte> p, QueueEntry& e) {
  if (p.size() < kPageHeader) return false;
  const auto kind = static_cast<uint8_t>(p[0]);
  const auto flags = static_cast<uint8_t>(p[1]);
  e.redelivered = (flags & kRedelivered) != 0;
  e.seq = LoadU64(p.data() + 2);
  e.expires_at = LoadU64(p.data() + 10);
  e.loc.segment = LoadU32(p.data() + 18);
  e.loc.offset = LoadU32(p.data() + 22);
  e.loc.size = LoadU32(p.data() + 26);
  if (kind == kPosition) return e.loc.stored();
  if (kind != kWholeMessage) return false;
  size_t at = kPageHeader;
  auto take_short = [&](std::string& s) {
    if (at >= p.size()) return false;
    const size_t n = static_cast<uint8_t>(p[at++]);
    if (at + n > p.size()) return false;
    s.assign(reinterpret_cast<const char*>(p.data() + at), n);
    at += n;
    return true;
  };
  auto m = MakeMessage();
  if (!take_short(m->exchange) || !take_short(m->routing_key) || at + 4 > p.size()) return false;
  const uint32_t props = LoadU32(p.data() + at);
  at += 4;
  if (props > p.size() - at) return false;
  m->data.assign(p.begin() + static_cast<ptrdiff_t>(at), p.end());
  m->properties_size = props;
  m->delivery_mode = (flags & kPersistent) != 0 ? 2 : 1;
  e.message = std::move(m);
  return true;
}

bool Queue::CanPage() const {
  return settings_.max_priority == 0 && vhost_ != nullptr && vhost_->store() != nullptr &&
         !deleted_;
}

bool Queue::Spill(QueueEntry& e) {
  // Nothing waits in front of it: it stays, a consumer may take it at once.
  if (paged_ == 0 && ready_.empty()) return false;
  if (CanPage()) {
    PageOut(std::move(e));
    return true;
  }
  // Length-bytes queues keep bodies in memory: their byte count needs the body size.
  if (e.loc.stored() && !settings_.max_length_bytes) e.message.reset();
  return false;
}

void Queue::WritePage(storage::PageFile& file, const QueueEntry& e) const {
  // A stored persistent message is written as its position, except in a length-bytes queue,
  // which needs the body size back with the entry.
  const bool whole = e.message && !(e.loc.stored() && !settings_.max_length_bytes);
  file.Append([&](ByteBuffer& out) { EncodePageEntry(out, e, whole); });
}

void Queue::PageOut(QueueEntry&& e) {
  if (pages_.empty()) pages_.push_back(vhost_->store()->OpenPageFile());
  WritePage(*pages_.back(), e);
  ++paged_;
}

void Queue::PageOutTail() {
  if (!CanPage()) return;
  // The entries in memory beyond the first kPressureBudget bytes go to a new page file that is
  // read before the ones already paged: arrival order is kept.
  uint64_t kept = 0;
  size_t keep = 0;
  ready_.ForEach([&](const QueueEntry& e) {
    if (keep == 0 || kept < kPressureBudget) {
      ++keep;
      kept += EntryCost(e);
    }
  });
  if (keep >= ready_.size()) return;
  auto file = vhost_->store()->OpenPageFile();
  uint64_t moved = 0;
  ready_.TakeTail(keep, [&](QueueEntry&& e) {
    Track(e, false);
    WritePage(*file, e);
    ++moved;
  });
  paged_ += moved;
  pages_.push_front(std::move(file));
  Log()->info("queue '{}': memory alarm, {} messages paged out to disk, {} stay in memory", name_,
              moved, ready_.size());
}

void Queue::PageIn() {
  bool watch = false;
  while (paged_ != 0 && !pages_.empty()) {
    storage::PageFile& file = *pages_.front();
    size_t bad = 0;
    auto n = file.Read(kPageInBytes, [&](std::span<const std::byte> payload) {
      QueueEntry e;
      if (!DecodePageEntry(payload, e)) {
        ++bad;
        return;
      }
      --paged_;
      if (e.expires_at != 0) {
        timed_ = true;
        WatchExpiry(e);
        watch = true;
      }
      Track(e, true);
      ready_.PushBack(std::move(e));
    });
    if (bad != 0) {
      paged_ -= std::min<uint64_t>(paged_, bad);
      Log()->error("queue '{}': {} paged messages in {} are unreadable (bad record) and lost",
                   name_, bad, file.dir());
    }
    if (!n) {
      const uint64_t lost = file.count();
      paged_ -= std::min<uint64_t>(paged_, lost);
      Log()->error("queue '{}': reading paged messages back from {} failed: {}; {} messages lost",
                   name_, file.dir(), n.error().message(), lost);
      pages_.pop_front();
      continue;
    }
    if (file.count() == 0) pages_.pop_front();
    if (n.value() != 0) break;
  }
  if (paged_ == 0) pages_.clear();
  if (watch) ScheduleWake();
}

void Queue::DropPages() {
  if (paged_ == 0) return;
  // Persistent messages are acked in the segment log: they must not come back at a restart.
  if (log_) {
    for (auto& file : pages_) {
      while (file->count() > 0) {
        auto n = file->Read(kPageInBytes, [&](std::span<const std::byte> payload) {
          QueueEntry e;
          if (DecodePageEntry(payload, e)) Settle(e);
        });
        if (!n || n.value() == 0) break;
      }
    }
  }
  pages_.clear();
  paged_ = 0;
}

void Queue::SetMemoryPressure(bool on) {
  budget_ = on ? std::min(memory_bytes_, kPressureBudget) : memory_bytes_;
  if (on && resident_bytes_ > budget_) PageOutTail();
}

void Vhost::SetMemoryPressure(bool on) {
  if (memory_pressure_ == on) return;
  memory_pressure_ = on;
  for (auto& [name, q] : queues_) q->SetMemoryPressure(on);
}

void Broker::OnMemoryAlarm(bool on) {
  for (auto& [name, v] : vhosts_) v->SetMemoryPressure(on);
}

}  // namespace warren::broker
