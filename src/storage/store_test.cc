#include "storage/store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "storage/faulty_fs.h"

namespace warren::storage {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("warren-store-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    log_.reset();  // a log never outlives its store
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen(uint64_t segment_bytes = 8u << 20) {
    log_.reset();
    store_.reset();
    StoreOptions o;
    o.data_dir = dir_.string();
    o.segment_bytes = segment_bytes;
    store_ = std::make_unique<Store>(fs_, o, io_);
    ASSERT_TRUE(store_->Open());
    log_ = store_->OpenQueue("/", "q");
  }
  // Simulates kill -9 + power loss: the store is dropped without its shutdown flush, and
  // whatever was not synced is lost.
  void CrashAndReopen() {
    fs_.FailAppends(1000000, std::errc::io_error);  // Close() must not write anything more
    fs_.FailSyncs(true);
    log_.reset();
    store_.reset();
    fs_.FailAppends(0, std::errc::io_error);
    fs_.FailSyncs(false);
    fs_.Crash();
    Reopen();
  }
  Location Put(uint64_t seq, const std::string& body) {
    MessageRecord m;
    m.seq = seq;
    m.exchange = "x";
    m.routing_key = "rk";
    m.body = std::as_bytes(std::span(body));
    return log_->Append(m);
  }
  std::string BodyAt(Location loc) {
    auto r = log_->Read(loc);
    EXPECT_TRUE(r);
    if (!r) return "";
    auto m = DecodeMessage(r.value());
    EXPECT_TRUE(m);
    return std::string(reinterpret_cast<const char*>(m->body.data()), m->body.size());
  }
  std::vector<uint64_t> Seqs(const std::vector<RecoveredMessage>& v) {
    std::vector<uint64_t> out;
    for (auto& m : v) out.push_back(m.seq);
    return out;
  }

  std::filesystem::path dir_;
  boost::asio::io_context io_;
  FaultyFs fs_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<QueueLog> log_;
};

TEST_F(StoreTest, AppendReadBackBeforeAndAfterTheWrite) {
  auto a = Put(1, "first");
  EXPECT_TRUE(a.stored());
  EXPECT_EQ(BodyAt(a), "first");  // still in the buffer
  store_->SyncNowForTest();
  EXPECT_EQ(BodyAt(a), "first");  // from the file
  EXPECT_EQ(store_->synced_epoch(), store_->appended_epoch());
  EXPECT_FALSE(store_->Failed(store_->synced_epoch()));
}

TEST_F(StoreTest, RecoverMinusAcksWithDeliveredMarks) {
  std::vector<Location> locs;
  for (uint64_t i = 1; i <= 5; ++i) locs.push_back(Put(i, "m" + std::to_string(i)));
  log_->Ack(2, locs[1]);
  log_->Delivered(3);
  store_->SyncNowForTest();
  Reopen();
  RecoveryStats stats;
  auto got = log_->Recover(stats);
  EXPECT_EQ(Seqs(got), (std::vector<uint64_t>{1, 3, 4, 5}));
  EXPECT_FALSE(got[0].delivered);
  EXPECT_TRUE(got[1].delivered);
  EXPECT_EQ(stats.messages, 4u);
  EXPECT_EQ(BodyAt(got[2].loc), "m4");
  // The log keeps working after recovery: appends go after the recovered ones.
  auto l6 = Put(6, "m6");
  store_->SyncNowForTest();
  Reopen();
  got = log_->Recover(stats);
  EXPECT_EQ(Seqs(got), (std::vector<uint64_t>{1, 3, 4, 5, 6}));
  EXPECT_EQ(BodyAt(got.back().loc), "m6");
  (void)l6;
}

TEST_F(StoreTest, MaxSeqCoversAckedMessagesSoNumberingNeverRestarts) {
  auto a = Put(1, "a");
  auto b = Put(2, "b");
  log_->Ack(1, a);
  log_->Ack(2, b);
  store_->SyncNowForTest();
  Reopen();
  RecoveryStats stats;
  EXPECT_TRUE(log_->Recover(stats).empty());
  // Both acks are still in the (kept) tail segment: seqs 1 and 2 must never be used again.
  EXPECT_EQ(log_->max_seq(), 2u);
}

TEST_F(StoreTest, FullyAckedSegmentsAreDeletedFromTheFront) {
  Reopen(/*segment_bytes=*/200);
  std::vector<Location> locs;
  for (uint64_t i = 1; i <= 20; ++i) locs.push_back(Put(i, std::string(60, 'a')));
  store_->SyncNowForTest();
  const uint64_t before = log_->segment_count();
  EXPECT_GT(before, 5u);
  // Acking a middle segment deletes nothing: segments go from the front only.
  for (uint64_t i = 10; i <= 12; ++i) log_->Ack(i, locs[i - 1]);
  store_->SyncNowForTest();
  const auto first = std::filesystem::path(log_->dir()) / "00000000000000000001.seg";
  EXPECT_TRUE(std::filesystem::exists(first));
  const uint64_t after_middle = log_->segment_count();  // the ack records may add one
  EXPECT_GE(after_middle, before);
  for (uint64_t i = 1; i <= 9; ++i) log_->Ack(i, locs[i - 1]);
  store_->SyncNowForTest();
  EXPECT_FALSE(std::filesystem::exists(first));
  EXPECT_LT(log_->segment_count(), after_middle);
  Reopen(200);
  RecoveryStats stats;
  auto got = log_->Recover(stats);
  std::vector<uint64_t> want;
  for (uint64_t i = 13; i <= 20; ++i) want.push_back(i);
  EXPECT_EQ(Seqs(got), want);
}

TEST_F(StoreTest, AckRecordsRollTheTailSoADrainedQueueShrinks) {
  Reopen(/*segment_bytes=*/300);
  std::vector<Location> locs;
  for (uint64_t i = 1; i <= 40; ++i) locs.push_back(Put(i, "m"));
  store_->SyncNowForTest();
  // Acked and delivered one at a time: lots of small records, no new messages.
  for (uint64_t i = 1; i <= 40; ++i) {
    log_->Delivered(i);
    log_->Ack(i, locs[i - 1]);
    store_->SyncNowForTest();
  }
  EXPECT_LE(log_->segment_count(), 2u);
  uint64_t bytes = 0;
  for (const auto& f : std::filesystem::directory_iterator(log_->dir())) bytes += f.file_size();
  EXPECT_LT(bytes, 2 * 300u + 200u);
  Reopen(300);
  RecoveryStats stats;
  EXPECT_TRUE(log_->Recover(stats).empty());
  EXPECT_EQ(log_->max_seq(), 40u);
}

TEST_F(StoreTest, CrashLosesOnlyWhatWasNotSynced) {
  for (uint64_t i = 1; i <= 3; ++i) Put(i, "synced");
  store_->SyncNowForTest();
  const uint64_t confirmed = store_->synced_epoch();
  EXPECT_EQ(confirmed, 3u);
  Put(4, "written, not synced");
  store_->Commit();  // hands the batch over; the crash may come before its fdatasync
  CrashAndReopen();
  RecoveryStats stats;
  auto got = log_->Recover(stats);
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(Seqs(got).front(), 1u);
  EXPECT_EQ(got[2].seq, 3u);
}

TEST_F(StoreTest, TornTailIsTruncatedAndTheLogContinues) {
  Put(1, "one");
  Put(2, "two");
  store_->SyncNowForTest();
  // A torn write: 7 bytes of the next record reach the file, then the process dies.
  fs_.FailAppends(1, std::errc::io_error, 7);
  Put(3, "three");
  store_->Commit();
  CrashAndReopen();
  // Make the torn prefix survive the crash, as it would if the page had been written back.
  RecoveryStats stats;
  auto got = log_->Recover(stats);
  EXPECT_EQ(Seqs(got), (std::vector<uint64_t>{1, 2}));
  Put(3, "three again");
  store_->SyncNowForTest();
  Reopen();
  got = log_->Recover(stats);
  EXPECT_EQ(Seqs(got), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(BodyAt(got[2].loc), "three again");
}

TEST_F(StoreTest, GarbageAtTheEndOfASegmentIsCutAndCounted) {
  Put(1, "one");
  store_->SyncNowForTest();
  Reopen();
  const auto seg = std::filesystem::path(log_->dir()) / "00000000000000000001.seg";
  const auto good = std::filesystem::file_size(seg);
  {
    FILE* f = std::fopen(seg.c_str(), "ab");
    const char junk[] = "\x30\x00\x00\x00garbage-that-is-not-a-record";
    std::fwrite(junk, 1, sizeof junk - 1, f);
    std::fclose(f);
  }
  RecoveryStats stats;
  auto got = log_->Recover(stats);
  EXPECT_EQ(Seqs(got), std::vector<uint64_t>{1});
  EXPECT_EQ(stats.torn_bytes, 32u);
  EXPECT_EQ(std::filesystem::file_size(seg), good);
}

// A tail that fills slowly is kept zero-filled ahead of its appends (File::Reserve), so its
// fdatasyncs write no new file length. After a crash the zeros (and unsynced appends over them)
// are the end of the data, not a torn tail.
TEST_F(StoreTest, SlowTailIsPreallocatedAndItsZerosAreNotTornAfterACrash) {
  const std::string body(1000, 'b');
  uint64_t seq = 0;
  while (log_->tail_size() < 600 * 1024) Put(++seq, body);
  store_->SyncNowForTest();  // half a megabyte at once: fast, nothing reserved
  const auto seg = std::filesystem::path(log_->dir()) / "00000000000000000001.seg";
  EXPECT_EQ(std::filesystem::file_size(seg), log_->tail_size());
  // The next half megabyte takes at least 50 ms: slower than 16 MiB/s, so preallocated.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const uint64_t from = log_->tail_size();
  while (log_->tail_size() < from + 520 * 1024) Put(++seq, body);
  store_->SyncNowForTest();
  const uint64_t data_end = log_->tail_size();
  EXPECT_GE(std::filesystem::file_size(seg), data_end + 512 * 1024);
  const uint64_t synced = seq;
  // Written over the zeros, never synced: lost in the crash, and the zeros are back.
  fs_.FailSyncs(true);
  Put(++seq, "lost");
  store_->SyncNowForTest();
  CrashAndReopen();
  RecoveryStats stats;
  auto got = log_->Recover(stats);
  ASSERT_EQ(got.size(), synced);
  EXPECT_EQ(got.back().seq, synced);
  EXPECT_EQ(stats.torn_bytes, 0u);                       // zeros are not damage
  EXPECT_EQ(std::filesystem::file_size(seg), data_end);  // cut back to the data
  // The log goes on from there.
  Put(seq + 1, "after");
  store_->SyncNowForTest();
  Reopen();
  got = log_->Recover(stats);
  ASSERT_EQ(got.size(), synced + 1);
  EXPECT_EQ(BodyAt(got.back().loc), "after");
}

TEST_F(StoreTest, FastTailIsNotPreallocated) {
  const std::string body(1000, 'b');
  uint64_t seq = 0;
  // 1.5 MiB buffered in memory and written at once: at 16 MiB/s that would take 94 ms.
  while (log_->tail_size() < 1536 * 1024) Put(++seq, body);
  store_->SyncNowForTest();
  const auto seg = std::filesystem::path(log_->dir()) / "00000000000000000001.seg";
  EXPECT_EQ(std::filesystem::file_size(seg), log_->tail_size());
}

TEST_F(StoreTest, AFailedPreallocationOnlyCostsTheSpeedUp) {
  fs_.FailReserves(true);
  const std::string body(1000, 'b');
  uint64_t seq = 0;
  while (log_->tail_size() < 600 * 1024) Put(++seq, body);
  store_->SyncNowForTest();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const uint64_t from = log_->tail_size();
  while (log_->tail_size() < from + 520 * 1024) Put(++seq, body);
  store_->SyncNowForTest();
  EXPECT_FALSE(store_->Failed(store_->appended_epoch()));  // confirmed all the same
  const auto seg = std::filesystem::path(log_->dir()) / "00000000000000000001.seg";
  EXPECT_EQ(std::filesystem::file_size(seg), log_->tail_size());
  fs_.FailReserves(false);
  Reopen();
  RecoveryStats stats;
  EXPECT_EQ(log_->Recover(stats).size(), seq);
}

TEST_F(StoreTest, WriteErrorFailsTheEpochAndTheRetryStoresIt) {
  Put(1, "ok");
  store_->SyncNowForTest();
  fs_.FailAppends(1, std::errc::no_space_on_device, 5);
  auto loc = Put(2, "no space");
  const uint64_t e = store_->appended_epoch();
  store_->SyncNowForTest();
  EXPECT_GE(store_->synced_epoch(), e);
  EXPECT_TRUE(store_->Failed(e));       // its confirm becomes a nack
  EXPECT_FALSE(store_->Failed(e - 1));  // the earlier one stays confirmed
  EXPECT_EQ(BodyAt(loc), "no space");   // still readable: kept and written by the retry
  Put(3, "after");
  store_->SyncNowForTest();
  EXPECT_FALSE(store_->Failed(store_->appended_epoch()));
  Reopen();
  RecoveryStats stats;
  EXPECT_EQ(Seqs(log_->Recover(stats)), (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(StoreTest, SyncErrorFailsTheEpoch) {
  Put(1, "a");
  fs_.FailSyncs(true);
  store_->SyncNowForTest();
  EXPECT_TRUE(store_->Failed(store_->appended_epoch()));
  fs_.FailSyncs(false);
  Put(2, "b");
  store_->SyncNowForTest();
  EXPECT_FALSE(store_->Failed(store_->appended_epoch()));
}

TEST_F(StoreTest, GroupCommitCoversManyAppendsWithFewSyncs) {
  const int before = fs_.syncs();
  for (uint64_t i = 1; i <= 1000; ++i) Put(i, "x");
  store_->SyncNowForTest();
  EXPECT_EQ(store_->synced_epoch(), 1000u);
  EXPECT_LE(fs_.syncs() - before, 2);
}

TEST_F(StoreTest, DefinitionsAreWrittenAtomicallyAndReadBack) {
  std::string defs = R"({"queues":[]})";
  store_->SetDefinitionsSource([&](std::string& out) { out += defs; });
  store_->DefinitionsChanged();
  store_->SyncNowForTest();
  auto r = store_->ReadDefinitions();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r.value());
  EXPECT_EQ(*r.value(), defs);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "definitions.json.tmp"));
  // The next change is rendered into the previous write's buffer: only the new text is written.
  defs = R"({"queues":[{"name":"q"}]})";
  store_->DefinitionsChanged();
  store_->SyncNowForTest();
  r = store_->ReadDefinitions();
  ASSERT_TRUE(r && r.value());
  EXPECT_EQ(*r.value(), defs);
}

TEST_F(StoreTest, DestroyedQueueFolderGoesAndOrphansAreRemoved) {
  Put(1, "x");
  store_->SyncNowForTest();
  const std::string dir = log_->dir();
  EXPECT_TRUE(std::filesystem::exists(dir));
  store_->DestroyQueue(std::move(log_));
  store_->SyncNowForTest();
  EXPECT_FALSE(std::filesystem::exists(dir));

  log_ = store_->OpenQueue("/", "orphan");
  Put(1, "x");
  store_->SyncNowForTest();
  const std::string orphan = log_->dir();
  log_.reset();
  store_->RemoveOrphans({});
  store_->SyncNowForTest();
  EXPECT_FALSE(std::filesystem::exists(orphan));
}

TEST_F(StoreTest, QueueDirNamesDifferByVhostAndName) {
  EXPECT_EQ(QueueDirName("/", "q").size(), 32u);
  EXPECT_NE(QueueDirName("/", "q"), QueueDirName("/", "r"));
  EXPECT_NE(QueueDirName("a", "b/c"), QueueDirName("a/b", "c"));
  EXPECT_EQ(QueueDirName("/", "q"), QueueDirName("/", "q"));
}

// Random appends, acks and crashes: what was synced (minus acks that were synced) is always
// recovered, and nothing recovered was never appended.
TEST_F(StoreTest, RandomCrashesNeverLoseSyncedMessages) {
  std::mt19937 rng(12345);
  std::map<uint64_t, Location> live;  // appended, not acked
  std::set<uint64_t> durable;         // synced and not acked
  uint64_t next = 1;
  for (int round = 0; round < 30; ++round) {
    const int n = static_cast<int>(rng() % 50);
    for (int i = 0; i < n; ++i) {
      if (!live.empty() && rng() % 3 == 0) {
        auto it = live.begin();
        std::advance(it, static_cast<long>(rng() % live.size()));
        log_->Ack(it->first, it->second);
        durable.erase(it->first);  // an ack may or may not survive: either way is allowed
        live.erase(it);
      } else {
        live[next] = Put(next, std::string(rng() % 300, 'z'));
        ++next;
      }
    }
    if (rng() % 2) {
      store_->SyncNowForTest();
      for (auto& [s, l] : live) durable.insert(s);
    }
    if (rng() % 4 == 0) {
      CrashAndReopen();
      RecoveryStats stats;
      auto got = log_->Recover(stats);
      std::set<uint64_t> seen;
      live.clear();
      for (auto& m : got) {
        seen.insert(m.seq);
        live[m.seq] = m.loc;
        EXPECT_LT(m.seq, next);
      }
      for (uint64_t s : durable) EXPECT_TRUE(seen.contains(s)) << "lost " << s;
      durable = seen;
      if (!got.empty()) next = std::max(next, got.back().seq + 1);
    }
  }
}

}  // namespace
}  // namespace warren::storage
