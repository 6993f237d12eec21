#include "operator/util/lsn.h"

#include <cinttypes>
#include <cstdio>

namespace pgrs {

std::string FormatLsn(uint64_t lsn) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%" PRIX64 "/%" PRIX64, static_cast<uint64_t>(lsn >> 32), static_cast<uint64_t>(lsn & 0xffffffffu));
  return buf;
}

std::optional<uint64_t> ParseLsn(const std::string& text) {
  unsigned long long hi = 0, lo = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%llX/%llX%c", &hi, &lo, &tail) != 2) return std::nullopt;
  return (static_cast<uint64_t>(hi) << 32) | static_cast<uint64_t>(lo);
}

}  // namespace pgrs
