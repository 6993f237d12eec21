// What a kubelet's fsGroup does to a volume (every directory 2770, group
// read/write on files), and the agent putting the directories PostgreSQL
// checks back to a mode it accepts.
#include "operator/agent/permissions.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "operator/agent/temp_dir_for_test.h"
#include "operator/util/files.h"

namespace pgrs::agent {
namespace {

class DirectoryModesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(root_.empty()); }

  std::string Dir(const std::string& name, mode_t mode) {
    std::string path = JoinPath(root_, name);
    EXPECT_TRUE(MakeDirs(path, 0700).ok());
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  static mode_t ModeOf(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  TempDirForTest dir_{"pgrs-permissions"};
  const std::string& root_ = dir_.path();
};

TEST_F(DirectoryModesTest, AnFsGroupModeIsMade0700AndReported) {
  std::string data = Dir("data", 02770);
  auto corrected = EnsurePostgresDirectoryModes(data);
  ASSERT_TRUE(corrected.ok()) << corrected.status().ToString();
  ASSERT_EQ(corrected->size(), 1u);
  EXPECT_EQ((*corrected)[0].path, data);
  EXPECT_EQ((*corrected)[0].before, 02770u);
  EXPECT_EQ((*corrected)[0].after, 0700u);
  EXPECT_EQ(ModeOf(data), 0700u);
  // Done once: a second look changes nothing.
  corrected = EnsurePostgresDirectoryModes(data);
  ASSERT_TRUE(corrected.ok());
  EXPECT_TRUE(corrected->empty());
}

TEST_F(DirectoryModesTest, ModesPostgresAcceptsAreLeftAlone) {
  for (mode_t mode : {0700, 0750, 02700, 02750}) {
    std::string data = Dir("data-" + std::to_string(mode), mode);
    auto corrected = EnsurePostgresDirectoryModes(data);
    ASSERT_TRUE(corrected.ok());
    EXPECT_TRUE(corrected->empty()) << std::oct << mode;
    EXPECT_EQ(ModeOf(data), mode);
  }
}

TEST_F(DirectoryModesTest, LinkedWalAndTablespaceDirectoriesAreCorrectedToo) {
  std::string data = Dir("data", 0700);
  std::string wal = Dir("wal", 02770);
  std::string space = Dir("space", 0777);
  std::string otherSpace = Dir("space2", 0750);
  ASSERT_EQ(::symlink(wal.c_str(), JoinPath(data, "pg_wal").c_str()), 0);
  Dir("data/pg_tblspc", 0700);
  ASSERT_EQ(::symlink(space.c_str(), JoinPath(data, "pg_tblspc/16384").c_str()), 0);
  ASSERT_EQ(::symlink(otherSpace.c_str(), JoinPath(data, "pg_tblspc/16385").c_str()), 0);
  auto corrected = EnsurePostgresDirectoryModes(data);
  ASSERT_TRUE(corrected.ok()) << corrected.status().ToString();
  ASSERT_EQ(corrected->size(), 2u);
  EXPECT_EQ((*corrected)[0].path, wal);
  EXPECT_EQ((*corrected)[1].path, space);
  EXPECT_EQ(ModeOf(wal), 0700u);
  EXPECT_EQ(ModeOf(space), 0700u);
  EXPECT_EQ(ModeOf(otherSpace), 0750u);
}

TEST_F(DirectoryModesTest, AMissingDataDirectoryIsAnErrorNamingIt) {
  auto corrected = EnsurePostgresDirectoryModes(JoinPath(root_, "absent"));
  ASSERT_FALSE(corrected.ok());
  EXPECT_NE(corrected.status().message().find(JoinPath(root_, "absent")), std::string::npos);
}

}  // namespace
}  // namespace pgrs::agent
