#include "base/memory_monitor.h"

#include <algorithm>
#include <utility>

#include "base/logging.h"

namespace warren {

MemoryMonitor::MemoryMonitor(boost::asio::io_context& io, MemoryAlarm& alarm, uint64_t limit,
                             MemoryProbe probe)
    : timer_(io), alarm_(alarm), limit_(limit), probe_(std::move(probe)) {}

void MemoryMonitor::Start() {
  running_ = true;
  const auto now = std::chrono::steady_clock::now();
  timer_.expires_at(now);
  Check(now);
  Schedule();
}

void MemoryMonitor::Stop() {
  running_ = false;
  timer_.cancel();
}

void MemoryMonitor::Schedule() {
  // From the previous deadline, not from now: the period does not drift with the loop's load.
  timer_.expires_at(std::max(timer_.expiry() + kPeriod, std::chrono::steady_clock::now()));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !running_) return;
    Check(std::chrono::steady_clock::now());
    Schedule();
  });
}

void MemoryMonitor::Check(std::chrono::steady_clock::time_point now) {
  uint64_t rss = probe_.resident_bytes();
  if (rss > limit_ && now - probe_.last_release() >= kMinReleaseInterval) {
    // Freed message buffers may still count as resident: hand them back before deciding.
    probe_.release_free_memory();
    rss = probe_.resident_bytes();
  }
  const bool on = rss > limit_;
  if (on == alarm_.on()) return;
  static const auto log = GetLogger("app");
  if (on) {
    log->warn(
        "memory alarm: resident memory {} bytes is above the high-water mark of {} bytes; "
        "publishers are blocked",
        rss, limit_);
  } else {
    log->info("memory alarm cleared: resident memory {} bytes; publishers resume", rss);
  }
  alarm_.Set(on);
}

}  // namespace warren
