#include "base/assert.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "base/logging.h"

namespace warren::detail {

namespace {
std::atomic<uint64_t> bug_count{0};
}

void AssertFail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "FATAL: check failed: %s at %s:%d\n", expr, file, line);
  std::fflush(stderr);
  std::abort();
}

void Bug(const char* msg, const char* file, int line) {
  bug_count.fetch_add(1, std::memory_order_relaxed);
  GetLogger("bug")->error("internal bug: {} at {}:{}", msg, file, line);
#ifndef NDEBUG
  std::abort();
#endif
}

uint64_t BugCount() { return bug_count.load(std::memory_order_relaxed); }

}  // namespace warren::detail
