#include "operator/util/json.h"

#include <climits>
#include <cmath>

namespace pgrs {

std::optional<int64_t> JsonInt64(const web::json::value& v) {
  if (!v.is_number()) return std::nullopt;
  const web::json::number& n = v.as_number();
  if (n.is_int64()) return n.to_int64();
  if (n.is_integral()) return std::nullopt;  // an unsigned integer above INT64_MAX
  const double d = n.to_double();
  // [-2^63, 2^63): every double in it converts exactly; NaN fails both.
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || std::trunc(d) != d) return std::nullopt;
  return static_cast<int64_t>(d);
}

std::optional<int> JsonInt32(const web::json::value& v) {
  std::optional<int64_t> n = JsonInt64(v);
  if (!n || *n < INT_MIN || *n > INT_MAX) return std::nullopt;
  return static_cast<int>(*n);
}

}  // namespace pgrs
