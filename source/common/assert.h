#pragma once
// Invariant checks, after Envoy's RELEASE_ASSERT / ASSERT:
// - CORRAL_RELEASE_ASSERT: we cannot continue safely; abort with a message in every build.
// - CORRAL_ASSERT: cannot happen; checked in debug builds only.

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
