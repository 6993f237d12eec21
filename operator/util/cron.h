// Five-field cron expressions (minute hour day-of-month month day-of-week),
// read as in Vixie cron and evaluated in UTC: `*`, numbers, lists `1,2`,
// ranges `1-5`, steps `*/15` and `1-30/5`; day-of-week 0-7 (0 and 7 are
// Sunday). Names (jan, mon), `@daily` and the like are not accepted.
// When both day fields are restricted a day matches when EITHER matches,
// else when both do; as in Vixie cron a field that starts with `*` (also
// `*/2`) counts as unrestricted.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>

#include "operator/util/status.h"

namespace pgrs {

struct CronSchedule {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;      // 1..31
  std::bitset<13> months;    // 1..12
  std::bitset<7> weekdays;   // 0 = Sunday
  bool daysRestricted = false;      // the day-of-month field does not start with '*'
  bool weekdaysRestricted = false;  // the day-of-week field does not start with '*'
};

// Invalid with a message that names the field, e.g. `minute field "61": 61
// is out of range 0-59`; the caller prefixes the object and field path.
Result<CronSchedule> ParseCron(const std::string& text);

// The first whole minute strictly after `after` that the schedule matches;
// nullopt when none comes within 10 years (`0 0 30 2 *`).
std::optional<std::chrono::system_clock::time_point> NextCronTime(const CronSchedule& schedule,
                                                                  std::chrono::system_clock::time_point after);

}  // namespace pgrs
