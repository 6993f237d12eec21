#include "operator/util/cron.h"

#include <sstream>
#include <vector>

namespace pgrs {

namespace {

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, sep)) out.push_back(part);
  if (!text.empty() && text.back() == sep) out.push_back("");
  return out;
}

std::optional<int> Number(const std::string& s) {
  if (s.empty() || s.size() > 4) return std::nullopt;
  int n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// One field into bits [min, max]; a message naming the problem, or "".
template <size_t N>
std::string ParseField(const std::string& field, int min, int max, std::bitset<N>& bits) {
  if (field.empty()) return "is empty";
  for (const std::string& item : Split(field, ',')) {
    if (item.empty()) return "has an empty list item";
    std::string range = item;
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string::npos) {
      range = item.substr(0, slash);
      auto s = Number(item.substr(slash + 1));
      if (!s || *s < 1) return "step \"" + item.substr(slash + 1) + "\" must be a number of at least 1";
      step = *s;
      if (range != "*" && range.find('-') == std::string::npos) {
        return "step in \"" + item + "\" needs * or a range before the /";
      }
    }
    int lo = min, hi = max;
    if (range != "*") {
      auto dash = range.find('-');
      auto a = Number(range.substr(0, dash));
      if (!a) return "\"" + range.substr(0, dash) + "\" is not a number";
      lo = hi = *a;
      if (dash != std::string::npos) {
        auto b = Number(range.substr(dash + 1));
        if (!b) return "\"" + range.substr(dash + 1) + "\" is not a number";
        hi = *b;
      }
      for (int v : {lo, hi}) {
        if (v < min || v > max) {
          return std::to_string(v) + " is out of range " + std::to_string(min) + "-" + std::to_string(max);
        }
      }
      if (lo > hi) return "range " + range + " ends before it starts";
    }
    for (int v = lo; v <= hi; v += step) bits.set(static_cast<size_t>(v));
  }
  return "";
}

}  // namespace

Result<CronSchedule> ParseCron(const std::string& text) {
  std::vector<std::string> fields;
  std::istringstream in(text);
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() != 5) {
    return Status::Invalid("\"" + text + "\" must have 5 fields (minute hour day-of-month month day-of-week), has " +
                           std::to_string(fields.size()));
  }
  CronSchedule s;
  std::bitset<8> weekdays;
  const char* names[] = {"minute", "hour", "day-of-month", "month", "day-of-week"};
  std::string errors[] = {ParseField(fields[0], 0, 59, s.minutes), ParseField(fields[1], 0, 23, s.hours),
                          ParseField(fields[2], 1, 31, s.days), ParseField(fields[3], 1, 12, s.months),
                          ParseField(fields[4], 0, 7, weekdays)};
  for (int i = 0; i < 5; ++i) {
    if (!errors[i].empty()) {
      return Status::Invalid(std::string(names[i]) + " field \"" + fields[i] + "\": " + errors[i]);
    }
  }
  for (size_t d = 0; d < 7; ++d) s.weekdays[d] = weekdays[d];
  if (weekdays[7]) s.weekdays.set(0);
  s.daysRestricted = fields[2][0] != '*';
  s.weekdaysRestricted = fields[4][0] != '*';
  return s;
}

std::optional<std::chrono::system_clock::time_point> NextCronTime(const CronSchedule& s,
                                                                  std::chrono::system_clock::time_point after) {
  using namespace std::chrono;
  // Start at the next whole minute after `after`.
  auto start = floor<minutes>(after) + minutes(1);
  sys_days day = floor<days>(start);
  int firstMinute = static_cast<int>(duration_cast<minutes>(start - day).count());
  for (int i = 0; i < 366 * 10 + 3; ++i, day += days(1), firstMinute = 0) {
    const year_month_day ymd(day);
    if (!s.months[static_cast<unsigned>(ymd.month())]) continue;
    const bool dom = s.days[static_cast<unsigned>(ymd.day())];
    const bool dow = s.weekdays[weekday(day).c_encoding()];
    const bool dayMatches = s.daysRestricted && s.weekdaysRestricted ? dom || dow : dom && dow;
    if (!dayMatches) continue;
    for (int m = firstMinute; m < 24 * 60; ++m) {
      if (s.hours[static_cast<size_t>(m / 60)] && s.minutes[static_cast<size_t>(m % 60)]) {
        return time_point_cast<system_clock::duration>(day + minutes(m));
      }
    }
  }
  return std::nullopt;
}

}  // namespace pgrs
