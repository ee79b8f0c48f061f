#include "base/memory_monitor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

namespace warren {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct FakeMemory {
  uint64_t resident = 0;
  uint64_t resident_after_release = 0;  // 0: a release frees nothing
  int releases = 0;
  Clock::time_point now{};
  Clock::time_point last_release{};

  MemoryProbe Probe() {
    return MemoryProbe{
        .resident_bytes = [this] { return resident; },
        .release_free_memory =
            [this] {
              ++releases;
              last_release = now;
              if (resident_after_release != 0) resident = resident_after_release;
            },
        .last_release = [this] { return last_release; },
    };
  }
};

TEST(MemoryMonitorTest, RaisesTheAlarmWithinAPeriodOfCrossingTheMark) {
  boost::asio::io_context io;
  MemoryAlarm alarm;
  FakeMemory mem;
  mem.resident = 500;
  mem.last_release = Clock::now();  // no release in the way: the first sample decides
  MemoryMonitor monitor(io, alarm, 1000, mem.Probe());
  monitor.Start();
  io.run_for(milliseconds(30));
  EXPECT_FALSE(alarm.on());
  mem.resident = 2000;
  const auto crossed = Clock::now();
  while (!alarm.on() && Clock::now() - crossed < milliseconds(2000)) io.run_for(milliseconds(5));
  EXPECT_TRUE(alarm.on());
  EXPECT_LE(Clock::now() - crossed, milliseconds(200));  // 100 ms + slack for a loaded machine
  mem.resident = 10;
  const auto fell = Clock::now();
  while (alarm.on() && Clock::now() - fell < milliseconds(2000)) io.run_for(milliseconds(5));
  EXPECT_FALSE(alarm.on());
  EXPECT_LE(Clock::now() - fell, milliseconds(200));
  monitor.Stop();
}

TEST(MemoryMonitorTest, ReleasesFreeMemoryAtMostOncePerInterval) {
  boost::asio::io_context io;
  MemoryAlarm alarm;
  FakeMemory mem;
  MemoryMonitor monitor(io, alarm, 1000, mem.Probe());
  const Clock::time_point t0 = Clock::now();
  // Below the mark: nothing to release.
  mem.resident = 900;
  mem.now = t0;
  monitor.Check(mem.now);
  EXPECT_EQ(mem.releases, 0);
  EXPECT_FALSE(alarm.on());
  // Above: release once, still above, so the alarm goes on.
  mem.resident = 1500;
  monitor.Check(mem.now);
  EXPECT_EQ(mem.releases, 1);
  EXPECT_TRUE(alarm.on());
  // Every 100 ms for the next second: sampled, not released again.
  for (int i = 1; i < 10; ++i) {
    mem.now = t0 + i * MemoryMonitor::kPeriod;
    monitor.Check(mem.now);
  }
  EXPECT_EQ(mem.releases, 1);
  EXPECT_TRUE(alarm.on());
  // A second later a release that frees enough clears the alarm.
  mem.resident_after_release = 800;
  mem.now = t0 + MemoryMonitor::kMinReleaseInterval;
  monitor.Check(mem.now);
  EXPECT_EQ(mem.releases, 2);
  EXPECT_FALSE(alarm.on());
}

TEST(MemoryMonitorTest, ARecentReleaseElsewhereCountsAgainstTheInterval) {
  boost::asio::io_context io;
  MemoryAlarm alarm;
  FakeMemory mem;
  MemoryMonitor monitor(io, alarm, 1000, mem.Probe());
  mem.now = Clock::now();
  mem.last_release = mem.now - milliseconds(300);  // e.g. the server's idle tick
  mem.resident = 1500;
  monitor.Check(mem.now);
  EXPECT_EQ(mem.releases, 0);
  EXPECT_TRUE(alarm.on());
}

TEST(MemoryTest, ResidentBytesFollowsTouchedMemory) {
  const uint64_t before = ResidentBytes();
  ASSERT_GT(before, 0u);
  constexpr size_t kSize = 64 << 20;
  auto block = std::make_unique<char[]>(kSize);
  std::memset(block.get(), 1, kSize);
  const uint64_t after = ResidentBytes();
  EXPECT_GE(after, before + kSize / 2) << "before " << before << " after " << after;
  EXPECT_EQ(block[kSize - 1], 1);
}

}  // namespace
}  // namespace warren
