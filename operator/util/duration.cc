#include "operator/util/duration.h"

#include <cmath>
#include <cstdlib>

namespace pgrs {

std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  char* end = nullptr;
  double n = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || n < 0) return std::nullopt;
  std::string unit = end;
  double ms;
  if (unit.empty() || unit == "s") ms = n * 1000;
  else if (unit == "ms") ms = n;
  else if (unit == "m") ms = n * 60000;
  else if (unit == "h") ms = n * 3600000;
  else return std::nullopt;
  // strtod also reads "inf", "nan" and 1e999: no duration (nor a defined cast).
  if (!std::isfinite(ms) || ms > 1e15) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

}  // namespace pgrs
