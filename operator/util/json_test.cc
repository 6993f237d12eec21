#include "operator/util/json.h"

#include <gtest/gtest.h>

namespace pgrs {
namespace {

using web::json::value;

TEST(JsonIntegerTest, WholeNumbersInRangeReadAndNothingElse) {
  EXPECT_EQ(JsonInt64(value::number(int64_t{-9223372036854775807LL - 1})), INT64_MIN);
  EXPECT_EQ(JsonInt64(value::parse("9223372036854775807")), INT64_MAX);
  EXPECT_EQ(JsonInt64(value::parse("5.0")), 5);
  EXPECT_EQ(JsonInt64(value::parse("1e3")), 1000);
  EXPECT_EQ(JsonInt64(value::parse("-9.223372036854775808e18")), INT64_MIN);
  EXPECT_EQ(JsonInt64(value::parse("18446744073709551615")), std::nullopt);
  EXPECT_EQ(JsonInt64(value::parse("9.223372036854775808e18")), std::nullopt);
  EXPECT_EQ(JsonInt64(value::parse("1e300")), std::nullopt);
  EXPECT_EQ(JsonInt64(value::parse("-1e300")), std::nullopt);
  EXPECT_EQ(JsonInt64(value::parse("5.5")), std::nullopt);
  EXPECT_EQ(JsonInt64(value::string("5")), std::nullopt);
  EXPECT_EQ(JsonInt64(value::null()), std::nullopt);

  EXPECT_EQ(JsonInt32(value::parse("2147483647")), 2147483647);
  EXPECT_EQ(JsonInt32(value::parse("-2147483648")), -2147483647 - 1);
  EXPECT_EQ(JsonInt32(value::parse("2147483648")), std::nullopt);
  EXPECT_EQ(JsonInt32(value::parse("4294972728")), std::nullopt);
  EXPECT_EQ(JsonInt32(value::parse("-2.5e9")), std::nullopt);
}

}  // namespace
}  // namespace pgrs
