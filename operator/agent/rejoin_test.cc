// What decides between trying a rewind again and re-cloning, and what in
// postgres.log says a standby cannot go on replaying.
#include "operator/agent/rejoin.h"

#include <gtest/gtest.h>

#include "operator/agent/temp_dir_for_test.h"
#include "operator/util/files.h"

namespace pgrs::agent {
namespace {

TEST(RewindSourceUnreachable, ConnectionProblemsAreRetriedEverythingElseReclones) {
  struct Row {
    const char* output;
    bool unreachable;
  };
  for (const Row& row : std::vector<Row>{
           {"pg_rewind: error: could not connect to server: Connection refused", true},
           {"pg_rewind: error: connection to server at \"10.0.0.5\", port 5432 failed: timeout expired", true},
           {"pg_rewind: error: server closed the connection unexpectedly", true},
           {"FATAL:  the database system is starting up", true},
           {"pg_rewind: error: could not find common ancestor of the source and target cluster's timelines", false},
           {"pg_rewind: error: target server needs to use either data checksums or \"wal_log_hints = on\"", false},
           {"pg_rewind: fatal: could not open file \"pg_wal/000000010000000000000003\"", false},
           {"", false},
       }) {
    EXPECT_EQ(RewindSourceUnreachable(row.output), row.unreachable) << row.output;
  }
}

TEST(RecoveryCannotContinueSign, LogLinesOfADivergedOrStarvedStandbyAreRecognised) {
  struct Row {
    const char* log;
    const char* sign;
  };
  for (const Row& row : std::vector<Row>{
           {"FATAL:  requested timeline 2 is not a child of this server's history\n",
            "is not a child of this server's history"},
           {"LOG:  new timeline 2 forked off current database system timeline 1 before current recovery point "
            "0/3000148\n",
            "before current recovery point"},
           {"FATAL:  requested timeline 2 does not contain minimum recovery point 0/5000060 on timeline 1\n",
            "does not contain minimum recovery point"},
           {"PANIC:  could not locate a valid checkpoint record\n", "could not locate a valid checkpoint record"},
           {"ERROR:  requested WAL segment 000000010000000000000003 has already been removed\n",
            "has already been removed"},
           {"LOG:  started streaming WAL from primary at 0/3000000 on timeline 1\n", ""},
           {"", ""},
       }) {
    EXPECT_EQ(RecoveryCannotContinueSign(row.log, false), row.sign) << row.log;
  }
}

// With spec.backup the standby's restore_command reads what its upstream
// removed (a primary removes only archived WAL): no reason to re-clone. A
// diverged timeline still is one.
TEST(RecoveryCannotContinueSign, WalRemovedFromTheUpstreamIsNoSignWithAnArchive) {
  const std::string removed =
      "FATAL:  could not receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000003 has "
      "already been removed\n";
  EXPECT_EQ(RecoveryCannotContinueSign(removed, false), kWalRemovedSign);
  EXPECT_EQ(RecoveryCannotContinueSign(removed, true), "");
  EXPECT_EQ(RecoveryCannotContinueSign("FATAL:  requested timeline 2 is not a child of this server's history\n", true),
            "is not a child of this server's history");
}

TEST(RecoveryWatch, OnlyWhatWasLoggedSinceTheLastLookCounts) {
  TempDirForTest dir("pgrs-rejoin");
  ASSERT_FALSE(dir.path().empty());
  InstanceLayout layout{"t-1", dir.path(), "/usr/lib/postgresql", {}};
  const std::string log = layout.PostgresLog();
  const std::string diverged = "FATAL:  requested timeline 2 is not a child of this server's history\n";
  ASSERT_TRUE(WriteFileAtomic(log, diverged).ok());

  RecoveryWatch watch(layout);
  watch.SkipExisting();
  EXPECT_EQ(watch.CannotContinue(false), "") << "what an earlier run logged says nothing about now";
  ASSERT_TRUE(WriteFileAtomic(log, diverged + "LOG:  started streaming WAL\n").ok());
  EXPECT_EQ(watch.CannotContinue(false), "");
  ASSERT_TRUE(WriteFileAtomic(log, diverged + "LOG:  started streaming WAL\n" + diverged).ok());
  EXPECT_EQ(watch.CannotContinue(false), "is not a child of this server's history");
  EXPECT_EQ(watch.CannotContinue(false), "") << "each line is looked at once";
  // A log replaced by a shorter one is read from its start.
  ASSERT_TRUE(WriteFileAtomic(log, diverged).ok());
  EXPECT_NE(watch.CannotContinue(false), "");
}

}  // namespace
}  // namespace pgrs::agent
