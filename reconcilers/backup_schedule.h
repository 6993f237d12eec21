// spec.backup.schedule: which scheduled backup is due now. A pure function
// of the schedule, the cron times each schedule last fired for (kept in
// status.backup.lastScheduled), whether a backup can start, and now.
//
// - A schedule seen for the first time starts counting now: nothing is
//   due until its next cron time.
// - A schedule is due when its first cron time after the one it last fired
//   for has come. Times missed while `pgrs local run` was down (or while no
//   backup could start) run ONCE, not once per missed time: firing records
//   the newest cron time that has passed.
// - When several are due, only the biggest runs (full > diff > incr) and
//   the smaller ones count as fired: a full backup serves for them.
// - While a backup runs or the set has no settled primary nothing fires;
//   what is due then runs once it can.
#pragma once

#include <chrono>
#include <string>

#include "operator/api/types.h"

namespace pgrs::reconcilers {

struct ScheduleDecision {
  std::string type;           // full | diff | incr; "" = nothing to start
  std::string scheduledTime;  // the cron time it runs for
  api::BackupScheduleTimes lastScheduled;  // to record in status.backup
};

// The schedule's expressions were checked by Validate; one that does not
// parse is treated as absent.
ScheduleDecision DecideScheduledBackup(const api::BackupScheduleSpec& schedule, const api::BackupScheduleTimes& last,
                                       bool canStart, std::chrono::system_clock::time_point now);

}  // namespace pgrs::reconcilers
