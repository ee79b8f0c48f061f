#include "base/memory.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>

namespace warren {

uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

uint64_t TotalRamBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

void ReleaseFreeMemory() { ::malloc_trim(0); }

void MemoryAlarm::Set(bool on) {
  if (on == on_) return;
  on_ = on;
  // A listener may remove itself (or another) while being told.
  auto listeners = listeners_;
  for (Listener* l : listeners) {
    if (listeners_.contains(l)) l->OnMemoryAlarm(on);
  }
}

}  // namespace warren
