// What the fuzz targets assert: a property broken aborts with a message, so
// libFuzzer keeps the input as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#define PGRS_FUZZ_CHECK(condition, what)                                                             \
  do {                                                                                               \
    if (!(condition)) {                                                                              \
      std::fprintf(stderr, "fuzz check failed: %s: %s (%s:%d)\n", #condition, std::string(what).c_str(), \
                   __FILE__, __LINE__);                                                              \
      std::abort();                                                                                  \
    }                                                                                                \
  } while (false)
