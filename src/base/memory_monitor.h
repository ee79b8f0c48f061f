#pragma once
// Samples resident memory every 100 ms and raises or clears a MemoryAlarm against a limit
// (RabbitMQ's vm_memory_high_watermark checks every memory_monitor_interval, 2.5 s by default).
//
// Why 100 ms: a fast publisher adds its whole throughput between two samples, so the sampling
// period bounds how far past the mark memory goes before publishers are blocked. A sample is
// one pread of /proc/self/statm (a few µs), so ten a second cost nothing measurable.
//
// Before raising the alarm it gives freed memory back (ReleaseFreeMemory, glibc malloc_trim),
// since buffers freed but still resident would otherwise count; malloc_trim walks the heap
// (milliseconds for a large one), so it runs at most once per kMinReleaseInterval whoever
// asked for it last (LastFreeMemoryRelease(): the server's idle tick trims too).
//
// Threading: the io_context's thread only. Lifetime: Stop() before destruction.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

#include "base/memory.h"

namespace warren {

// What the monitor reads and does; tests substitute fakes.
struct MemoryProbe {
  std::function<uint64_t()> resident_bytes = ResidentBytes;
  std::function<void()> release_free_memory = ReleaseFreeMemory;
  std::function<std::chrono::steady_clock::time_point()> last_release = LastFreeMemoryRelease;
};

class MemoryMonitor {
 public:
  static constexpr std::chrono::milliseconds kPeriod{100};
  static constexpr std::chrono::milliseconds kMinReleaseInterval{1000};

  MemoryMonitor(boost::asio::io_context& io, MemoryAlarm& alarm, uint64_t limit,
                MemoryProbe probe = {});
  // Checks now, then every kPeriod until Stop().
  void Start();
  void Stop();
  // One sample at `now` (Start's timer calls it; tests call it directly).
  void Check(std::chrono::steady_clock::time_point now);

 private:
  void Schedule();

  boost::asio::steady_timer timer_;
  MemoryAlarm& alarm_;
  uint64_t limit_;
  MemoryProbe probe_;
  bool running_ = false;
};

}  // namespace warren
