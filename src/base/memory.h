#pragma once
// Process memory figures and the memory alarm (RabbitMQ's vm_memory_high_watermark).
//
// MemoryAlarm is a flag with listeners: MemoryMonitor (base/memory_monitor.h) samples
// ResidentBytes() every 100 ms and sets it; AMQP connections listen and block publishers while
// it is on.
// Threading: one shard; not thread-safe. Listeners remove themselves before they die.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>

namespace warren {

// Resident set size of this process, from /proc/self/statm (opened once; each call is one
// pread, a few µs); 0 if unreadable.
uint64_t ResidentBytes();
// Physical RAM of the machine (sysconf); 0 if unknown.
uint64_t TotalRamBytes();
// Gives memory the allocator holds but no longer uses back to the OS (glibc malloc_trim), so
// that RSS follows what is really in use once a backlog is consumed. It walks the heap
// (milliseconds for a large one): callers keep it to about once a second.
void ReleaseFreeMemory();
// When ReleaseFreeMemory() last ran (steady clock; the epoch if never).
std::chrono::steady_clock::time_point LastFreeMemoryRelease();

class MemoryAlarm {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnMemoryAlarm(bool on) = 0;
  };
  bool on() const { return on_; }
  void AddListener(Listener* l) { listeners_.insert(l); }
  void RemoveListener(Listener* l) { listeners_.erase(l); }
  // Raises or clears the alarm; listeners hear only changes.
  void Set(bool on);

 private:
  bool on_ = false;
  std::set<Listener*> listeners_;
};

}  // namespace warren
