#pragma once
// Durable storage: per-queue segment logs, the definitions file and the sync thread
// (design.md section 5, docs/formats/).
//
// Threading: Store and every QueueLog live on the shard thread. Appends go into a per-queue
// buffer; Commit() (posted once per loop turn in which something changed) writes each buffer
// with one write and hands one batch to the sync thread, which writes the definitions file,
// fsyncs new folders and fdatasyncs every file written since the last batch, then posts the
// outcome back. While a batch is being synced, the next one accumulates (group commit, no
// timer).
//
// Epochs: every append of a message record advances appended_epoch(). A publisher's confirm for
// a message that needed epoch E is sent once synced_epoch() >= E, as an ack, or as a nack if
// Failed(E) (the batch covering E could not be written or synced).

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/buffer.h"
#include "storage/fs.h"
#include "storage/page_file.h"
#include "storage/segment.h"

namespace warren::storage {

struct StoreOptions {
  std::string data_dir;
  uint64_t segment_bytes = 8u << 20;
  // Below this many free bytes on the data dir's filesystem the disk alarm is on: publishers
  // are blocked until space returns (checked every second).
  uint64_t disk_free_limit = 50'000'000;
};

class AlarmListener {
 public:
  virtual ~AlarmListener() = default;
  virtual void OnDiskAlarm(bool on) = 0;
};

// Where a message record is: segment number (0 = not on disk), offset and size of the record.
struct Location {
  uint32_t segment = 0;
  uint32_t offset = 0;
  uint32_t size = 0;
  bool stored() const { return segment != 0; }
};

class SyncListener {
 public:
  virtual ~SyncListener() = default;
  // synced_epoch() moved forward; release confirms and commits that waited for it.
  virtual void OnSynced() = 0;
};

class Store;

struct RecoveredMessage {
  uint64_t seq = 0;
  Location loc;
  bool delivered = false;
  uint64_t expires_at = 0;  // the record's expires_at (Unix ms, 0 = never)
};

struct RecoveryStats {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t torn_bytes = 0;    // cut from torn segment tails
  uint64_t bad_segments = 0;  // unreadable or with a bad header, skipped
};

// One durable queue's segment log.
class QueueLog {
 public:
  QueueLog(Store& store, std::string dir);
  ~QueueLog();
  QueueLog(const QueueLog&) = delete;
  QueueLog& operator=(const QueueLog&) = delete;

  // Reads the folder: live messages in seq order. Call once, before the first Append.
  std::vector<RecoveredMessage> Recover(RecoveryStats& stats);
  // Appends a message record. Returns a Location with segment 0 if it could not be (the error
  // is logged and the current epoch is marked failed).
  Location Append(const MessageRecord& m);
  // The message at `loc` was removed from the queue for good (ack, purge, drop).
  void Ack(uint64_t seq, Location loc);
  // The message was handed to a consumer (for `redelivered` after a restart).
  void Delivered(uint64_t seq);
  // Reads back a record's payload (decode with DecodeMessage).
  result<std::vector<std::byte>> Read(Location loc);
  const std::string& dir() const { return dir_; }
  uint64_t segment_count() const { return segments_.size(); }
  // Bytes of the last segment: written to its file plus still buffered.
  uint64_t tail_size() const {
    if (segments_.empty() || segments_.back().file == nullptr) return pending_.size();
    return segments_.back().file->size() + pending_.size();
  }
  // The largest seq any record recovered from the folder names (messages and acks): new
  // messages must be numbered above it, or old ack records would remove them at the next
  // recovery.
  uint64_t max_seq() const { return max_seq_; }

 private:
  friend class Store;
  struct Segment {
    uint32_t number = 0;
    FilePtr file;
    uint64_t live = 0;  // message records not yet acked
  };
  // Writes buffered records (ack and delivered records included); false on a write error
  // (logged).
  bool Flush();
  // Writes pending_ to the tail segment.
  bool WritePending();
  void Preallocate(File& f, uint64_t end);
  bool StartSegment();
  void TrimFront();
  Segment* Find(uint32_t number);
  void MarkDirty();
  std::string SegmentPath(uint32_t number) const;

  Store& store_;
  std::string dir_;
  bool dir_created_ = false;
  bool reserve_failed_ = false;  // logged once until a Reserve works again
  struct RateCheck {
    uint64_t offset = 0;  // the tail's end when Preallocate last measured its rate (0: a new tail)
    std::chrono::steady_clock::time_point at;
  };
  RateCheck rate_check_;
  std::deque<Segment> segments_;
  ByteBuffer pending_;  // records for the tail segment, not yet written
  std::vector<uint64_t> acks_;
  std::vector<uint64_t> delivered_;
  std::vector<FilePtr> unsynced_;
  bool dirty_ = false;
  uint64_t max_seq_ = 0;
};

class Store {
 public:
  Store(FileSystem& fs, StoreOptions options, boost::asio::io_context& io);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Creates the folders, empties trash/ and starts the sync thread.
  result<void> Open();
  // Stops taking batches, syncs what is pending and joins the sync thread.
  void Close();

  // A durable queue's log (its folder is created at the first append).
  std::unique_ptr<QueueLog> OpenQueue(std::string_view vhost, std::string_view name);
  // The queue is deleted: its folder goes to trash/ and is removed in the background.
  void DestroyQueue(std::unique_ptr<QueueLog> log);
  // A new, empty page file for a queue's paged-out messages, in its own folder under paging/
  // (page_file.h). paging/ is emptied by Open().
  std::unique_ptr<PageFile> OpenPageFile();
  // Folders under queues/ that no live queue claims go to trash/.
  void RemoveOrphans(const std::set<std::string>& live_dirs);

  // Definitions: `source` renders the current durable definitions as JSON into its argument,
  // an empty buffer whose capacity is kept from one write to the next.
  void SetDefinitionsSource(std::function<void(std::string&)> source);
  // Advances appended_epoch(): the file covering the change is synced with that epoch.
  void DefinitionsChanged();
  // The definitions file, if there is one.
  result<std::optional<std::string>> ReadDefinitions();

  // Writes the records buffered so far to their files (no sync). A session calls it before its
  // replies go out, so that a reply the client has seen (an ack's round trip, say) is never
  // ahead of the records behind it: a killed process loses none of them. The sync batch still
  // starts from the posted commit.
  void WriteBuffered();

  uint64_t appended_epoch() const { return appended_epoch_; }
  uint64_t synced_epoch() const { return synced_epoch_; }
  // True if the batch that covered `epoch` failed (only meaningful once synced).
  bool Failed(uint64_t epoch) const;
  void AddListener(SyncListener* l) { listeners_.insert(l); }
  void RemoveListener(SyncListener* l) { listeners_.erase(l); }

  // The low-free-disk alarm.
  bool disk_alarm() const { return disk_alarm_; }
  void AddAlarmListener(AlarmListener* l) { alarm_listeners_.insert(l); }
  void RemoveAlarmListener(AlarmListener* l) { alarm_listeners_.erase(l); }
  // Reads the free space and raises or clears the alarm (a timer calls it every second).
  void CheckDisk();

  // Writes buffered records and hands a batch to the sync thread (if none is in flight).
  void Commit();
  // Waits until everything appended so far is synced (tests, shutdown).
  void SyncNowForTest();

  FileSystem& fs() { return fs_; }
  const StoreOptions& options() const { return options_; }
  const std::string& queues_dir() const { return queues_dir_; }

 private:
  friend class QueueLog;
  struct Batch {
    uint64_t epoch = 0;
    std::vector<FilePtr> files;
    std::vector<std::string> dirs;
    std::optional<std::string> definitions;
    std::vector<std::string> trash;
    bool failed = false;
  };
  void Schedule();
  void Dirty(QueueLog* log);
  void Forget(QueueLog* log);
  void MarkFailed() { batch_failed_ = true; }
  void NoteDir(const std::string& dir) { dirs_to_sync_.push_back(dir); }
  void SyncThread();
  void Completed(uint64_t epoch, bool failed, std::optional<std::string> definitions);

  FileSystem& fs_;
  StoreOptions options_;
  boost::asio::io_context& io_;
  std::string queues_dir_;
  std::string trash_dir_;
  std::string paging_dir_;
  uint64_t page_file_counter_ = 0;
  std::string definitions_path_;
  std::function<void(std::string&)> definitions_source_;
  // The buffer of the last definitions write, back from the sync thread (Completed).
  std::string definitions_buffer_;
  bool definitions_dirty_ = false;
  bool commit_posted_ = false;
  bool in_flight_ = false;
  bool batch_failed_ = false;
  uint64_t appended_epoch_ = 0;
  uint64_t handed_epoch_ = 0;
  uint64_t synced_epoch_ = 0;
  uint64_t trash_counter_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> failed_ranges_;  // (from, to], newest last
  std::set<QueueLog*> dirty_;
  std::set<QueueLog*> retry_;            // their last write failed; written again next commit
  std::vector<FilePtr> unsynced_files_;  // written, waiting for the next batch
  std::vector<std::string> dirs_to_sync_;
  std::vector<std::string> trash_;
  std::set<SyncListener*> listeners_;
  std::set<AlarmListener*> alarm_listeners_;
  bool disk_alarm_ = false;
  boost::asio::steady_timer disk_timer_;
  // Handlers posted to io_ hold a weak copy: one that runs after the Store is gone does nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  void ArmDiskTimer();

  // Shared with the sync thread.
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Batch> next_;
  bool stopping_ = false;
  std::thread thread_;
};

// The folder name of a queue: 32 hex digits of XXH3-128 over vhost + '\0' + name.
std::string QueueDirName(std::string_view vhost, std::string_view name);

}  // namespace warren::storage
