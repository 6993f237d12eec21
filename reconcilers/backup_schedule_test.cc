// spec.backup.schedule: which backup is due, one row per situation.
#include "reconcilers/backup_schedule.h"

#include <gtest/gtest.h>

namespace pgrs::reconcilers {
namespace {

struct Row {
  std::string name;
  api::BackupScheduleSpec schedule;
  api::BackupScheduleTimes last;
  bool canStart;
  std::string now;
  std::string type;           // expected
  std::string scheduledTime;  // expected
  api::BackupScheduleTimes record;  // expected
};

TEST(BackupScheduleTest, Table) {
  const std::string kNow = "2026-12-03T10:00:30Z";
  const std::vector<Row> rows = {
      {"no schedule: nothing due, nothing recorded", {}, {}, true, kNow, "", "", {}},
      {"first sight starts counting now", {"", "", "* * * * *"}, {}, true, kNow, "", "", {"", "", kNow}},
      {"not yet: next minute has not come",
       {"", "", "* * * * *"}, {"", "", "2026-12-03T10:00:00Z"}, true, kNow, "", "",
       {"", "", "2026-12-03T10:00:00Z"}},
      {"due: the next minute came",
       {"", "", "* * * * *"}, {"", "", "2026-12-03T09:59:10Z"}, true, kNow, "incr", "2026-12-03T10:00:00Z",
       {"", "", "2026-12-03T10:00:00Z"}},
      {"missed times run once: the newest passed one is recorded",
       {"", "0 * * * *", ""}, {"", "2026-12-01T03:00:00Z", ""}, true, kNow, "diff", "2026-12-03T10:00:00Z",
       {"", "2026-12-03T10:00:00Z", ""}},
      {"same minute: full wins, the smaller ones count as fired",
       {"0 10 * * *", "0 * * * *", "*/15 * * * *"},
       {"2026-12-02T10:00:00Z", "2026-12-03T09:00:00Z", "2026-12-03T09:45:00Z"}, true, kNow, "full",
       "2026-12-03T10:00:00Z", {"2026-12-03T10:00:00Z", "2026-12-03T10:00:00Z", "2026-12-03T10:00:00Z"}},
      {"diff beats incr, full not due",
       {"0 0 * * 0", "0 * * * *", "*/15 * * * *"},
       {"2026-11-29T00:00:00Z", "2026-12-03T09:00:00Z", "2026-12-03T09:45:00Z"}, true, kNow, "diff",
       "2026-12-03T10:00:00Z", {"2026-11-29T00:00:00Z", "2026-12-03T10:00:00Z", "2026-12-03T10:00:00Z"}},
      {"cannot start (running, or no settled primary): due stays due",
       {"", "", "* * * * *"}, {"", "", "2026-12-03T09:58:00Z"}, false, kNow, "", "",
       {"", "", "2026-12-03T09:58:00Z"}},
      {"cannot start still starts counting a new schedule",
       {"0 1 * * *", "", ""}, {}, false, kNow, "", "", {kNow, "", ""}},
      {"a removed schedule forgets its time",
       {"", "", ""}, {"2026-12-02T10:00:00Z", "", ""}, true, kNow, "", "", {}},
      {"a schedule that never fires (Feb 30) is never due",
       {"0 0 30 2 *", "", ""}, {"2026-12-02T10:00:00Z", "", ""}, true, kNow, "", "",
       {"2026-12-02T10:00:00Z", "", ""}},
      {"an expression that does not parse is treated as absent",
       {"61 * * * *", "", ""}, {"2026-12-02T10:00:00Z", "", ""}, true, kNow, "", "", {}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto d = DecideScheduledBackup(row.schedule, row.last, row.canStart, *api::ParseTime(row.now));
    EXPECT_EQ(d.type, row.type);
    EXPECT_EQ(d.scheduledTime, row.scheduledTime);
    EXPECT_EQ(d.lastScheduled.full, row.record.full);
    EXPECT_EQ(d.lastScheduled.differential, row.record.differential);
    EXPECT_EQ(d.lastScheduled.incremental, row.record.incremental);
  }
}

}  // namespace
}  // namespace pgrs::reconcilers
