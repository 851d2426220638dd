#pragma once
// Invariant checks, after Envoy's RELEASE_ASSERT / ASSERT / ENVOY_BUG:
// - CORRAL_RELEASE_ASSERT: we cannot continue safely; abort with a message in every build.
// - CORRAL_ASSERT: cannot happen; checked in debug builds only.
// - CORRAL_BUG: should not happen but we can go on; logged and counted.

#include <cstdio>
#include <cstdlib>

#include "source/common/logger.h"

#define CORRAL_RELEASE_ASSERT(cond, msg)                                                         \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "assert failure: %s at %s:%d: %s\n", #cond, __FILE__, __LINE__, msg); \
      std::abort();                                                                              \
    }                                                                                            \
  } while (false)

#ifdef NDEBUG
#define CORRAL_ASSERT(cond) ((void)0)
#else
#define CORRAL_ASSERT(cond) CORRAL_RELEASE_ASSERT(cond, "debug assertion")
#endif

#define CORRAL_BUG(cond, msg)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      ::corral::Logger::countBug();                                            \
      CORRAL_LOG(err, "bug: {} at {}:{}: {}", #cond, __FILE__, __LINE__, msg); \
    }                                                                          \
  } while (false)
