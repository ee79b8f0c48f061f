#pragma once
// Three assertion levels (style.md, practice 11). Never assert on peer input or disk contents:
// validate and answer instead.
//
//   WARREN_ASSERT(cond)  debug-only invariant; compiled out in release builds.
//   WARREN_CHECK(cond)   always on; aborts on unrecoverable states.
//   WARREN_BUG(msg)      logs and counts in release, aborts in debug: "cannot happen" paths
//                        where continuing is safe.

#include <cstdint>

namespace warren::detail {
[[noreturn]] void AssertFail(const char* expr, const char* file, int line);
void Bug(const char* msg, const char* file, int line);
uint64_t BugCount();
}  // namespace warren::detail

#define WARREN_CHECK(cond) \
  ((cond) ? (void)0 : ::warren::detail::AssertFail(#cond, __FILE__, __LINE__))

#ifdef NDEBUG
#define WARREN_ASSERT(cond) ((void)0)
#else
#define WARREN_ASSERT(cond) WARREN_CHECK(cond)
#endif

#define WARREN_BUG(msg) ::warren::detail::Bug((msg), __FILE__, __LINE__)
