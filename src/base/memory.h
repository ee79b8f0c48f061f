#pragma once
// Process memory figures and the memory alarm (RabbitMQ's vm_memory_high_watermark).
//
// MemoryAlarm is a flag with listeners: app/ samples ResidentBytes() about once a second and
// sets it; AMQP connections listen and block publishers while it is on.
// Threading: one shard; not thread-safe. Listeners remove themselves before they die.

#include <cstddef>
#include <cstdint>
#include <set>

namespace warren {

// Resident set size of this process, from /proc/self/statm; 0 if unreadable.
uint64_t ResidentBytes();
// Physical RAM of the machine (sysconf); 0 if unknown.
uint64_t TotalRamBytes();
// Gives memory the allocator holds but no longer uses back to the OS (glibc malloc_trim), so
// that RSS follows what is really in use once a backlog is consumed.
void ReleaseFreeMemory();

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
