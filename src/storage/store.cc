#include "storage/store.h"

#include <xxhash.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include "base/logging.h"

namespace warren::storage {

namespace {

auto Log() {
  static auto log = GetLogger("storage");
  return log;
}

// Once a tail segment holds half a chunk, it is kept zero-filled (File::Reserve) between half a
// chunk and a chunk ahead of its appends, up to storage.segment_bytes, while it fills slower
// than kPreallocateBelowBytesPerSecond. Quiet queues never get there, so 10,000 of them do not
// hold a chunk of disk each.
constexpr uint64_t kPreallocateChunk = 1024 * 1024;
constexpr double kPreallocateBelowBytesPerSecond = 16.0 * 1024 * 1024;

std::optional<uint32_t> ParseSegmentName(const std::string& name) {
  if (name.size() != 24 || name.substr(20) != ".seg") return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  if (v == 0 || v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

}  // namespace

std::string QueueDirName(std::string_view vhost, std::string_view name) {
  std::string key(vhost);
  key.push_back('\0');
  key.append(name);
  const XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64, static_cast<uint64_t>(h.high64),
                static_cast<uint64_t>(h.low64));
  return buf;
}

// --- QueueLog --------------------------------------------------------------------------------

QueueLog::QueueLog(Store& store, std::string dir) : store_(store), dir_(std::move(dir)) {}

QueueLog::~QueueLog() { store_.Forget(this); }

std::string QueueLog::SegmentPath(uint32_t number) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/%020u.seg", number);
  return dir_ + buf;
}

QueueLog::Segment* QueueLog::Find(uint32_t number) {
  if (segments_.empty() || number < segments_.front().number) return nullptr;
  const size_t i = number - segments_.front().number;
  return i < segments_.size() ? &segments_[i] : nullptr;
}

void QueueLog::MarkDirty() {
  if (!dirty_) {
    dirty_ = true;
    store_.Dirty(this);
  }
}

std::vector<RecoveredMessage> QueueLog::Recover(RecoveryStats& stats) {
  std::vector<RecoveredMessage> messages;
  FileSystem& fs = store_.fs();
  if (!fs.Exists(dir_)) return messages;
  dir_created_ = true;
  auto names = fs.List(dir_);
  if (!names) {
    Log()->error("cannot list {}: {}; its messages are not recovered", dir_,
                 names.error().message());
    ++stats.bad_segments;
    return messages;
  }
  std::vector<uint32_t> numbers;
  for (const auto& n : names.value()) {
    if (auto num = ParseSegmentName(n)) numbers.push_back(*num);
  }
  std::sort(numbers.begin(), numbers.end());
  std::vector<uint64_t> acked;
  std::vector<uint64_t> delivered;
  for (uint32_t number : numbers) {
    const std::string path = SegmentPath(number);
    auto bytes = fs.ReadWhole(path);
    if (!bytes || !CheckSegmentHeader(bytes.value())) {
      Log()->error("segment {} is unreadable or has a bad header; skipped", path);
      ++stats.bad_segments;
      continue;
    }
    auto file = fs.Open(path, false);
    if (!file) {
      Log()->error("cannot open {}: {}; skipped", path, file.error().message());
      ++stats.bad_segments;
      continue;
    }
    // Keep numbering contiguous: a gap (a skipped or missing segment) becomes an empty one.
    while (!segments_.empty() && segments_.back().number + 1 < number) {
      segments_.push_back(Segment{segments_.back().number + 1, nullptr, 0});
    }
    segments_.push_back(Segment{number, file.value(), 0});
    const auto& all = bytes.value();
    ScanResult scan = ScanRecords(
        all, [&](uint8_t type, std::span<const std::byte> payload, uint64_t off, uint32_t size) {
          if (type == static_cast<uint8_t>(RecordType::kMessage)) {
            auto m = DecodeMessage(payload);
            if (!m) return;
            messages.push_back(RecoveredMessage{
                m->seq, Location{number, static_cast<uint32_t>(off), size}, false, m->expires_at});
          } else if (type == static_cast<uint8_t>(RecordType::kAcks)) {
            DecodeSeqList(payload, acked);
          } else if (type == static_cast<uint8_t>(RecordType::kDelivered)) {
            DecodeSeqList(payload, delivered);
          }
        });
    if (scan.torn) {
      const uint64_t cut = all.size() - scan.valid_end;
      if (scan.zero_tail) {
        // Zeros Reserve wrote ahead of the appends (and, after a machine crash, appends that
        // were not synced over them): the end of the data, not damage.
        Log()->debug("segment {}: {} preallocated bytes after offset {} cut", path, cut,
                     scan.valid_end);
      } else {
        Log()->warn("segment {}: torn tail at offset {}, {} bytes dropped", path, scan.valid_end,
                    cut);
        stats.torn_bytes += cut;
      }
      if (auto r = file.value()->Truncate(scan.valid_end); !r) {
        Log()->error("cannot truncate {}: {}", path, r.error().message());
      }
    }
  }
  // Messages are in seq order (appended in order, segments read in order).
  for (const auto& m : messages) max_seq_ = std::max(max_seq_, m.seq);
  for (uint64_t s : acked) max_seq_ = std::max(max_seq_, s);
  std::sort(acked.begin(), acked.end());
  std::sort(delivered.begin(), delivered.end());
  std::vector<RecoveredMessage> live;
  live.reserve(messages.size());
  for (auto& m : messages) {
    if (std::binary_search(acked.begin(), acked.end(), m.seq)) continue;
    m.delivered = std::binary_search(delivered.begin(), delivered.end(), m.seq);
    if (Segment* s = Find(m.loc.segment)) ++s->live;
    stats.bytes += m.loc.size;
    live.push_back(m);
  }
  stats.messages += live.size();
  TrimFront();
  return live;
}

bool QueueLog::StartSegment() {
  FileSystem& fs = store_.fs();
  if (!dir_created_) {
    if (auto r = fs.CreateDirs(dir_); !r) {
      Log()->error("cannot create {}: {}", dir_, r.error().message());
      return false;
    }
    dir_created_ = true;
    store_.NoteDir(store_.queues_dir());
  }
  if (!segments_.empty() && segments_.back().file != nullptr && !WritePending()) return false;
  const uint32_t number = segments_.empty() ? 1 : segments_.back().number + 1;
  auto file = fs.Open(SegmentPath(number), true);
  if (!file) {
    Log()->error("cannot create {}: {}", SegmentPath(number), file.error().message());
    return false;
  }
  segments_.push_back(Segment{number, file.value(), 0});
  rate_check_ = {0, std::chrono::steady_clock::now()};
  EncodeSegmentHeader(pending_);
  store_.NoteDir(dir_);
  MarkDirty();
  return true;
}

Location QueueLog::Append(const MessageRecord& m) {
  const bool need_new =
      segments_.empty() || segments_.back().file == nullptr ||
      segments_.back().file->size() + pending_.size() >= store_.options().segment_bytes;
  if (need_new && !StartSegment()) {
    ++store_.appended_epoch_;  // an epoch that will be reported failed: the publish is nacked
    store_.MarkFailed();
    return Location{};
  }
  Segment& tail = segments_.back();
  const uint64_t offset = tail.file->size() + pending_.size();
  if (offset > UINT32_MAX) {
    ++store_.appended_epoch_;
    store_.MarkFailed();
    return Location{};
  }
  const size_t before = pending_.size();
  EncodeMessage(pending_, m);
  ++tail.live;
  ++store_.appended_epoch_;
  MarkDirty();
  return Location{tail.number, static_cast<uint32_t>(offset),
                  static_cast<uint32_t>(pending_.size() - before)};
}

void QueueLog::Ack(uint64_t seq, Location loc) {
  if (!loc.stored()) return;
  acks_.push_back(seq);
  if (Segment* s = Find(loc.segment); s != nullptr && s->live > 0) --s->live;
  MarkDirty();
}

void QueueLog::Delivered(uint64_t seq) {
  delivered_.push_back(seq);
  MarkDirty();
}

void QueueLog::TrimFront() {
  // Only from the front, and never the tail (docs/formats/segment-v1.md, "Rules").
  while (segments_.size() > 1 && segments_.front().live == 0) {
    const std::string path = SegmentPath(segments_.front().number);
    if (segments_.front().file) {
      if (auto r = store_.fs().Remove(path); !r) {
        Log()->warn("cannot remove {}: {}", path, r.error().message());
      }
    }
    segments_.pop_front();
  }
}

bool QueueLog::Flush() {
  if (segments_.empty() || segments_.back().file == nullptr) {
    acks_.clear();  // nothing on disk to ack
    delivered_.clear();
    return pending_.empty();
  }
  if (!acks_.empty() || !delivered_.empty()) {
    // Ack and delivered records go to the tail too; a full tail rolls over here as well, so a
    // queue that only drains does not grow its last segment without bound.
    if (segments_.back().file->size() + pending_.size() >= store_.options().segment_bytes &&
        !StartSegment()) {
      return false;
    }
    if (!acks_.empty()) {
      EncodeSeqList(pending_, RecordType::kAcks, acks_);
      acks_.clear();
    }
    if (!delivered_.empty()) {
      EncodeSeqList(pending_, RecordType::kDelivered, delivered_);
      delivered_.clear();
    }
  }
  if (!WritePending()) return false;
  TrimFront();
  return true;
}

void QueueLog::Preallocate(File& f, uint64_t end) {
  const uint64_t cap = store_.options().segment_bytes;
  if (end >= cap || end + kPreallocateChunk / 2 <= f.reserved() ||
      end < rate_check_.offset + kPreallocateChunk / 2) {
    return;
  }
  // Only a slow tail gains: when appends come fast, each fdatasync covers many of them and the
  // length write is shared, while writing zeros first doubles what reaches the disk (-17% in
  // scenario 4 at full speed). The rate is measured over the last half chunk or more.
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - rate_check_.at).count();
  const uint64_t bytes = end - rate_check_.offset;
  const bool slow = static_cast<double>(bytes) <= seconds * kPreallocateBelowBytesPerSecond;
  rate_check_ = {end, now};
  if (!slow) return;
  if (auto r = f.Reserve(std::min(cap, end + kPreallocateChunk)); !r) {
    // Appends work without it, only each fdatasync then writes the file's length too.
    if (!reserve_failed_) {
      Log()->warn("cannot preallocate {}: {}; appending without", f.path(), r.error().message());
    }
    reserve_failed_ = true;
    return;
  }
  reserve_failed_ = false;
}

bool QueueLog::WritePending() {
  if (pending_.empty()) return true;
  File& f = *segments_.back().file;
  const uint64_t end = f.size();
  Preallocate(f, end + pending_.size());
  if (auto r = f.Append(pending_.span()); !r) {
    Log()->error("write to {} failed: {}; publishes not confirmed", f.path(), r.error().message());
    ignore_error(f.Truncate(end), "the next flush writes the same bytes again at `end`");
    return false;  // pending_ is kept and written again by the next commit
  }
  pending_.Clear();
  if (unsynced_.empty() || unsynced_.back() != segments_.back().file) {
    unsynced_.push_back(segments_.back().file);
  }
  return true;
}

result<std::vector<std::byte>> QueueLog::Read(Location loc) {
  Segment* s = Find(loc.segment);
  if (s == nullptr || s->file == nullptr) return std::make_error_code(std::errc::io_error);
  std::vector<std::byte> record(loc.size);
  if (s == &segments_.back() && loc.offset + uint64_t{loc.size} > s->file->size()) {
    // Still in the write buffer.
    const uint64_t at = loc.offset - s->file->size();
    if (at + loc.size > pending_.size()) return std::make_error_code(std::errc::io_error);
    std::copy_n(pending_.data() + at, loc.size, record.begin());
  } else {
    WARREN_TRY(s->file->ReadAt(loc.offset, record));
  }
  auto payload = CheckRecord(record);
  if (!payload) return std::make_error_code(std::errc::illegal_byte_sequence);
  return std::vector<std::byte>(payload->begin(), payload->end());
}

// --- Store -----------------------------------------------------------------------------------

std::unique_ptr<PageFile> Store::OpenPageFile() {
  auto dir = paging_dir_ + "/" + std::to_string(++page_file_counter_);
  if (fs_.Exists(dir)) ignore_error(fs_.RemoveAll(dir), "its files are replaced one by one");
  return std::make_unique<PageFile>(fs_, std::move(dir), options_.segment_bytes);
}

Store::Store(FileSystem& fs, StoreOptions options, boost::asio::io_context& io)
    : fs_(fs),
      options_(std::move(options)),
      io_(io),
      queues_dir_(options_.data_dir + "/queues"),
      trash_dir_(options_.data_dir + "/trash"),
      paging_dir_(options_.data_dir + "/paging"),
      definitions_path_(options_.data_dir + "/definitions.json"),
      disk_timer_(io) {}

Store::~Store() { Close(); }

result<void> Store::Open() {
  WARREN_TRY(fs_.CreateDirs(queues_dir_));
  WARREN_TRY(fs_.CreateDirs(trash_dir_));
  // Paged-out messages of the last run: transient ones do not survive a restart, and persistent
  // ones are in their queues' segment logs.
  if (fs_.Exists(paging_dir_)) {
    ignore_error(fs_.RemoveAll(paging_dir_), "a page file's folder is emptied when it is made");
  }
  auto old = fs_.List(trash_dir_);
  if (old) {
    for (const auto& n : old.value()) {
      ignore_error(fs_.RemoveAll(trash_dir_ + "/" + n), "left for the next start");
    }
  }
  thread_ = std::thread([this] { SyncThread(); });
  CheckDisk();
  ArmDiskTimer();
  return outcome::success();
}

void Store::ArmDiskTimer() {
  disk_timer_.expires_after(std::chrono::seconds(1));
  disk_timer_.async_wait(
      [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        CheckDisk();
        ArmDiskTimer();
      });
}

void Store::CheckDisk() {
  auto free = fs_.FreeBytes(options_.data_dir);
  if (!free) return;
  const bool on = free.value() < options_.disk_free_limit;
  if (on == disk_alarm_) return;
  disk_alarm_ = on;
  if (on) {
    Log()->warn(
        "disk alarm: {} bytes free on the data dir's filesystem, below the limit of {}; "
        "publishers are blocked",
        free.value(), options_.disk_free_limit);
  } else {
    Log()->info("disk alarm cleared: {} bytes free; publishers resume", free.value());
  }
  auto listeners = alarm_listeners_;
  for (AlarmListener* l : listeners) {
    if (alarm_listeners_.contains(l)) l->OnDiskAlarm(on);
  }
}

void Store::Close() {
  disk_timer_.cancel();
  if (!thread_.joinable()) return;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !next_.has_value(); });
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // What the last turn appended: write and sync it here, on the caller's thread.
  dirty_.insert(retry_.begin(), retry_.end());
  retry_.clear();
  for (QueueLog* log : dirty_) {
    log->dirty_ = false;
    if (!log->Flush()) continue;
    for (auto& f : log->unsynced_) unsynced_files_.push_back(std::move(f));
    log->unsynced_.clear();
  }
  dirty_.clear();
  for (auto& f : unsynced_files_) ignore_error(f->Sync(), "shutdown: recovery checks records");
  unsynced_files_.clear();
  for (const auto& d : dirs_to_sync_) ignore_error(fs_.SyncDir(d), "shutdown");
  if (definitions_dirty_ && definitions_source_) {
    std::string json;
    definitions_source_(json);
    auto r = WriteFileAtomic(fs_, definitions_path_, std::as_bytes(std::span(json)));
    if (!r) Log()->error("cannot write {}: {}", definitions_path_, r.error().message());
  }
}

std::unique_ptr<QueueLog> Store::OpenQueue(std::string_view vhost, std::string_view name) {
  return std::make_unique<QueueLog>(*this, queues_dir_ + "/" + QueueDirName(vhost, name));
}

void Store::DestroyQueue(std::unique_ptr<QueueLog> log) {
  if (!log) return;
  if (log->dir_created_ && fs_.Exists(log->dir_)) {
    const std::string to = trash_dir_ + "/" + std::to_string(++trash_counter_) + "-" +
                           std::to_string(reinterpret_cast<uintptr_t>(log.get()));
    if (auto r = fs_.Rename(log->dir_, to); r) {
      trash_.push_back(to);
      NoteDir(queues_dir_);
    } else {
      Log()->error("cannot move {} to trash: {}", log->dir_, r.error().message());
    }
  }
  log.reset();
  Schedule();
}

void Store::RemoveOrphans(const std::set<std::string>& live_dirs) {
  auto names = fs_.List(queues_dir_);
  if (!names) return;
  for (const auto& n : names.value()) {
    if (live_dirs.contains(queues_dir_ + "/" + n)) continue;
    Log()->info("queue folder {} belongs to no durable queue; removed", n);
    auto orphan = std::make_unique<QueueLog>(*this, queues_dir_ + "/" + n);
    orphan->dir_created_ = true;
    DestroyQueue(std::move(orphan));
  }
}

void Store::SetDefinitionsSource(std::function<void(std::string&)> source) {
  definitions_source_ = std::move(source);
}

void Store::DefinitionsChanged() {
  definitions_dirty_ = true;
  ++appended_epoch_;  // the reply to the change waits for this epoch, like a confirm
  Schedule();
}

result<std::optional<std::string>> Store::ReadDefinitions() {
  if (!fs_.Exists(definitions_path_)) return std::optional<std::string>();
  WARREN_TRY(auto bytes, fs_.ReadWhole(definitions_path_));
  return std::optional<std::string>(
      std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

bool Store::Failed(uint64_t epoch) const {
  for (auto it = failed_ranges_.rbegin(); it != failed_ranges_.rend(); ++it) {
    if (epoch > it->first && epoch <= it->second) return true;
    if (epoch > it->second) return false;
  }
  return false;
}

void Store::Dirty(QueueLog* log) {
  dirty_.insert(log);
  Schedule();
}

void Store::Forget(QueueLog* log) {
  dirty_.erase(log);
  retry_.erase(log);
}

void Store::Schedule() {
  if (commit_posted_) return;
  commit_posted_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    commit_posted_ = false;
    Commit();
  });
}

void Store::WriteBuffered() {
  if (dirty_.empty() && retry_.empty()) return;
  // Buffered records reach the files now, even while a sync is in flight: a killed process
  // loses nothing that was written (only a machine crash loses what was not yet synced).
  std::set<QueueLog*> work = std::move(dirty_);
  dirty_.clear();
  work.insert(retry_.begin(), retry_.end());
  retry_.clear();
  for (QueueLog* log : work) {
    log->dirty_ = false;
    if (!log->Flush()) {
      // Kept buffered and written again at the next commit. Not re-scheduled by itself, so a
      // full disk does not spin; any new activity (or Close) retries.
      if (appended_epoch_ != handed_epoch_) batch_failed_ = true;
      retry_.insert(log);
    }
    for (auto& f : log->unsynced_) unsynced_files_.push_back(std::move(f));
    log->unsynced_.clear();
  }
}

void Store::Commit() {
  WriteBuffered();
  if (in_flight_) return;  // Completed() hands the next batch over
  Batch b;
  b.files = std::move(unsynced_files_);
  unsynced_files_.clear();
  if (definitions_dirty_ && definitions_source_) {
    // The previous round's buffer: a megabyte-sized file is not re-faulted into fresh pages
    // (and trimmed away again) on every change.
    definitions_buffer_.clear();
    definitions_source_(definitions_buffer_);
    b.definitions = std::move(definitions_buffer_);
    definitions_buffer_ = std::string();
    definitions_dirty_ = false;
  }
  b.dirs = std::move(dirs_to_sync_);
  dirs_to_sync_.clear();
  b.trash = std::move(trash_);
  trash_.clear();
  b.epoch = appended_epoch_;
  b.failed = batch_failed_;
  batch_failed_ = false;
  if (b.files.empty() && b.dirs.empty() && !b.definitions && b.trash.empty() &&
      b.epoch == handed_epoch_ && !b.failed) {
    return;
  }
  handed_epoch_ = b.epoch;
  in_flight_ = true;
  {
    std::lock_guard lock(mu_);
    next_ = std::move(b);
  }
  cv_.notify_all();
}

void Store::SyncThread() {
  for (;;) {
    Batch b;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return next_.has_value() || stopping_; });
      if (!next_) return;
      b = std::move(*next_);
      next_.reset();
    }
    cv_.notify_all();  // Close() waits for the hand-over slot to be empty
    bool failed = b.failed;
    if (b.definitions) {
      auto r = WriteFileAtomic(fs_, definitions_path_, std::as_bytes(std::span(*b.definitions)));
      if (!r) {
        Log()->error("cannot write {}: {}", definitions_path_, r.error().message());
        failed = true;
      }
    }
    for (const auto& d : b.dirs) {
      if (auto r = fs_.SyncDir(d); !r) {
        Log()->error("fsync of folder {} failed: {}", d, r.error().message());
        failed = true;
      }
    }
    std::sort(b.files.begin(), b.files.end());
    b.files.erase(std::unique(b.files.begin(), b.files.end()), b.files.end());
    for (const auto& f : b.files) {
      if (auto r = f->Sync(); !r) {
        Log()->error("fdatasync of {} failed: {}; publishes not confirmed", f->path(),
                     r.error().message());
        failed = true;
      }
    }
    b.files.clear();  // release the files here, not on the shard
    for (const auto& t : b.trash) {
      ignore_error(fs_.RemoveAll(t), "trash/ is emptied at the next start");
    }
    boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_), epoch = b.epoch, failed,
                            definitions = std::move(b.definitions)]() mutable {
      if (!alive.expired()) Completed(epoch, failed, std::move(definitions));
    });
    {
      std::lock_guard lock(mu_);
      if (stopping_ && !next_) return;
    }
  }
}

void Store::Completed(uint64_t epoch, bool failed, std::optional<std::string> definitions) {
  in_flight_ = false;
  if (definitions) definitions_buffer_ = std::move(*definitions);
  if (failed) {
    if (!failed_ranges_.empty() && failed_ranges_.back().second == synced_epoch_) {
      failed_ranges_.back().second = epoch;
    } else {
      failed_ranges_.emplace_back(synced_epoch_, epoch);
    }
    if (failed_ranges_.size() > 1024) failed_ranges_.erase(failed_ranges_.begin());
  }
  synced_epoch_ = std::max(synced_epoch_, epoch);
  if (!dirty_.empty() || !unsynced_files_.empty() || definitions_dirty_ || !dirs_to_sync_.empty() ||
      !trash_.empty() || appended_epoch_ != handed_epoch_ || batch_failed_) {
    Commit();
  }
  auto listeners = listeners_;
  for (SyncListener* l : listeners) {
    if (listeners_.contains(l)) l->OnSynced();
  }
}

void Store::SyncNowForTest() {
  for (;;) {
    Commit();
    if (!in_flight_ && synced_epoch_ >= appended_epoch_ && dirty_.empty() &&
        unsynced_files_.empty()) {
      return;
    }
    if (io_.stopped()) io_.restart();
    io_.run_one_for(std::chrono::milliseconds(10));
  }
}

}  // namespace warren::storage
