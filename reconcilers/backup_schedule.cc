#include "reconcilers/backup_schedule.h"

#include "operator/util/cron.h"

namespace pgrs::reconcilers {

namespace {

// The newest cron time after `after` that is not after `now`, if any.
std::optional<std::chrono::system_clock::time_point> NewestPassed(const CronSchedule& cron,
                                                                   std::chrono::system_clock::time_point after,
                                                                   std::chrono::system_clock::time_point now) {
  std::optional<std::chrono::system_clock::time_point> newest;
  // Each step moves at least a minute; a schedule down for years runs
  // through at most this many steps before it takes now's minute.
  for (int i = 0; i < 100000; ++i) {
    auto next = NextCronTime(cron, newest.value_or(after));
    if (!next || *next > now) return newest;
    newest = next;
  }
  return std::chrono::floor<std::chrono::minutes>(now);
}

}  // namespace

ScheduleDecision DecideScheduledBackup(const api::BackupScheduleSpec& schedule, const api::BackupScheduleTimes& last,
                                       bool canStart, std::chrono::system_clock::time_point now) {
  struct Entry {
    const char* type;
    const std::string& cron;
    const std::string& last;
    std::string& record;
  };
  ScheduleDecision d;
  // Biggest first: the first due one wins.
  Entry entries[] = {{"full", schedule.full, last.full, d.lastScheduled.full},
                     {"diff", schedule.differential, last.differential, d.lastScheduled.differential},
                     {"incr", schedule.incremental, last.incremental, d.lastScheduled.incremental}};
  std::optional<std::chrono::system_clock::time_point> winner;
  for (Entry& e : entries) {
    auto cron = e.cron.empty() ? Result<CronSchedule>(Status::Invalid("")) : ParseCron(e.cron);
    auto lastTime = api::ParseTime(e.last);
    if (!cron.ok()) continue;  // not scheduled: nothing recorded
    if (!lastTime) {
      e.record = api::FormatTime(now);  // starts counting now
      continue;
    }
    e.record = e.last;
    if (!canStart) continue;
    auto due = NewestPassed(*cron, *lastTime, now);
    if (!due) continue;
    e.record = api::FormatTime(*due);
    if (!winner) {
      winner = due;
      d.type = e.type;
      d.scheduledTime = e.record;
    }
  }
  return d;
}

}  // namespace pgrs::reconcilers
