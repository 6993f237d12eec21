// Cron expressions: what parses, what is refused and why, and the next time.
#include "operator/util/cron.h"

#include <gtest/gtest.h>

#include "operator/api/types.h"

namespace pgrs {
namespace {

std::chrono::system_clock::time_point T(const std::string& rfc3339) { return *api::ParseTime(rfc3339); }

struct NextRow {
  std::string cron;
  std::string after;
  std::string next;  // "" = none
};

TEST(CronTest, NextTime) {
  const std::vector<NextRow> rows = {
      {"* * * * *", "2026-12-03T10:00:00Z", "2026-12-03T10:01:00Z"},      // strictly after
      {"* * * * *", "2026-12-03T10:00:59Z", "2026-12-03T10:01:00Z"},
      {"*/15 * * * *", "2026-12-03T10:01:00Z", "2026-12-03T10:15:00Z"},
      {"*/15 * * * *", "2026-12-03T10:45:00Z", "2026-12-03T11:00:00Z"},
      {"1-30/5 * * * *", "2026-12-03T10:27:00Z", "2026-12-03T11:01:00Z"},  // 1,6,...,26
      {"0,30 2 * * *", "2026-12-03T02:00:00Z", "2026-12-03T02:30:00Z"},
      {"0 2 * * *", "2026-12-03T02:00:00Z", "2026-12-04T02:00:00Z"},
      {"59 23 31 12 *", "2026-12-03T00:00:00Z", "2026-12-31T23:59:00Z"},  // year end
      {"0 0 1 * *", "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z"},
      {"0 0 29 2 *", "2027-01-01T00:00:00Z", "2028-02-29T00:00:00Z"},      // leap day
      {"0 0 30 2 *", "2026-12-03T00:00:00Z", ""},                          // never
      // 2026-12-03 is a Thursday (4).
      {"0 3 * * 0", "2026-12-03T10:00:00Z", "2026-12-06T03:00:00Z"},       // Sunday
      {"0 3 * * 7", "2026-12-03T10:00:00Z", "2026-12-06T03:00:00Z"},       // 7 is Sunday too
      {"0 3 * * 1-5", "2026-12-04T10:00:00Z", "2026-12-07T03:00:00Z"},     // Friday after 3:00 -> Monday
      // Both day fields restricted: either matches (Vixie cron).
      {"0 0 15 * 1", "2026-12-03T10:00:00Z", "2026-12-07T00:00:00Z"},      // Monday 7th before the 15th
      {"0 0 4 * 1", "2026-12-03T10:00:00Z", "2026-12-04T00:00:00Z"},       // the 4th before Monday
      // One starting with '*' counts as unrestricted: both must match.
      {"0 0 */2 * 1", "2026-12-03T10:00:00Z", "2026-12-07T00:00:00Z"},     // an odd day that is a Monday
      {"0 0 1 * */7", "2026-12-03T10:00:00Z", "2027-08-01T00:00:00Z"},     // a 1st that is a Sunday
  };
  for (const auto& row : rows) {
    auto cron = ParseCron(row.cron);
    ASSERT_TRUE(cron.ok()) << row.cron << ": " << cron.status().message();
    auto next = NextCronTime(*cron, T(row.after));
    if (row.next.empty()) {
      EXPECT_FALSE(next.has_value()) << row.cron;
    } else {
      ASSERT_TRUE(next.has_value()) << row.cron;
      EXPECT_EQ(api::FormatTime(*next), row.next) << row.cron << " after " << row.after;
    }
  }
}

TEST(CronTest, RefusedWithTheField) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"* * * *", "\"* * * *\" must have 5 fields (minute hour day-of-month month day-of-week), has 4"},
      {"* * * * * *", "must have 5 fields (minute hour day-of-month month day-of-week), has 6"},
      {"61 * * * *", "minute field \"61\": 61 is out of range 0-59"},
      {"* 24 * * *", "hour field \"24\": 24 is out of range 0-23"},
      {"* * 0 * *", "day-of-month field \"0\": 0 is out of range 1-31"},
      {"* * * 13 *", "month field \"13\": 13 is out of range 1-12"},
      {"* * * * 8", "day-of-week field \"8\": 8 is out of range 0-7"},
      {"*/0 * * * *", "minute field \"*/0\": step \"0\" must be a number of at least 1"},
      {"5/15 * * * *", "minute field \"5/15\": step in \"5/15\" needs * or a range before the /"},
      {"30-10 * * * *", "minute field \"30-10\": range 30-10 ends before it starts"},
      {"1,,2 * * * *", "minute field \"1,,2\": has an empty list item"},
      {"* * * jan *", "month field \"jan\": \"jan\" is not a number"},
      {"@daily", "must have 5 fields"},
  };
  for (const auto& [cron, message] : rows) {
    auto parsed = ParseCron(cron);
    ASSERT_FALSE(parsed.ok()) << cron;
    EXPECT_NE(parsed.status().message().find(message), std::string::npos) << cron << ": " << parsed.status().message();
  }
}

}  // namespace
}  // namespace pgrs
