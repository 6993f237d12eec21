#include "operator/lease/lease.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include <thread>

#include "operator/util/files.h"

namespace pgrs::lease {
namespace {

class FileLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pgrs-lease-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { RemoveTree(dir_).ok(); }
  std::string dir_;
};

TEST_F(FileLeaseTest, FirstAcquireCreatesTheLease) {
  FileLease lease(dir_ + "/lease.json");
  EXPECT_FALSE(lease.Get()->exists);
  auto got = lease.Acquire("demo-1", "", 5, false);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->holder, "demo-1");
  EXPECT_EQ(lease.Get()->holder, "demo-1");
  EXPECT_FALSE(lease.Get()->ExpiredAt(NowMs()));
}

TEST_F(FileLeaseTest, OnlyTheHolderRenews) {
  FileLease lease(dir_ + "/lease.json");
  ASSERT_TRUE(lease.Acquire("demo-1", "", 5, false).ok());
  EXPECT_TRUE(lease.Renew("demo-1", 5).ok());
  auto other = lease.Renew("demo-2", 5);
  EXPECT_EQ(other.status().code(), StatusCode::kConflict);
}

TEST_F(FileLeaseTest, AnotherHolderNeedsExpiryOrFencing) {
  FileLease lease(dir_ + "/lease.json");
  ASSERT_TRUE(lease.Acquire("demo-1", "", 60, false).ok());
  // Live and unfenced: refused.
  EXPECT_EQ(lease.Acquire("demo-2", "demo-1", 60, false).status().code(), StatusCode::kConflict);
  // The expected holder must match, even when fenced.
  EXPECT_EQ(lease.Acquire("demo-2", "demo-3", 60, true).status().code(), StatusCode::kConflict);
  // Fenced: handed over, and the old holder can no longer renew.
  auto taken = lease.Acquire("demo-2", "demo-1", 60, true);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(taken->transitions, 1);
  EXPECT_EQ(lease.Renew("demo-1", 60).status().code(), StatusCode::kConflict);
}

TEST_F(FileLeaseTest, ExpiredLeaseMayBeTaken) {
  FileLease lease(dir_ + "/lease.json");
  ASSERT_TRUE(lease.Acquire("demo-1", "", 0, false).ok());  // zero seconds: expires at once
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(lease.Get()->ExpiredAt(NowMs()));
  EXPECT_TRUE(lease.Acquire("demo-2", "demo-1", 5, false).ok());
}

TEST_F(FileLeaseTest, AHolderFrozenWhileLockingStallsNobody) {
  FileLease lease(dir_ + "/lease.json");
  ASSERT_TRUE(lease.Acquire("demo-1", "", 5, false).ok());
  // Another process takes the lock and stops (as a SIGSTOPped agent that
  // was renewing would): flock locks belong to the open file, so a child
  // holding it is what an agent would be.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = ::open((dir_ + "/lease.json.lock").c_str(), O_RDWR | O_CREAT, 0600);
    ::flock(fd, LOCK_EX);
    (void)!::write(ready[1], "x", 1);
    ::pause();
    ::_exit(0);
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  auto start = std::chrono::steady_clock::now();
  auto got = lease.Get();  // readers take no lock
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->holder, "demo-1");
  auto renewed = lease.Renew("demo-1", 5);  // writers give up in time
  EXPECT_EQ(renewed.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_TRUE(lease.Renew("demo-1", 5).ok());  // the lock died with its holder
}

TEST(LeaseFileCodec, RoundTripsAndRefusesWhatIsNoRecord) {
  LeaseRecord record{true, "demo-1", 1796270706123, 1796270711123, 5, 3};
  auto decoded = DecodeLeaseFile(EncodeLeaseFile(record));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, record);
  // Found by fuzz/lease_fuzzer's kind: numbers no field's integer holds.
  for (const std::string& text : std::vector<std::string>{
           R"({"holderIdentity":"a","acquireTimeMs":1e300,"renewTimeMs":1,"leaseDurationSeconds":5,"leaseTransitions":0})",
           R"({"holderIdentity":"a","acquireTimeMs":1,"renewTimeMs":1,"leaseDurationSeconds":4294967301,"leaseTransitions":0})",
           R"({"holderIdentity":"a","acquireTimeMs":1,"renewTimeMs":1,"leaseDurationSeconds":5})",
           "[]",
       }) {
    auto bad = DecodeLeaseFile(text);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.status().code(), StatusCode::kInternal) << text;
    EXPECT_EQ(bad.status().message().rfind("unreadable lease: ", 0), 0u) << bad.status().message();
  }
}

TEST(LeaseRecord, ExpiryOfAnyTimesDoesNotOverflow) {
  LeaseRecord record{true, "a", 0, INT64_MAX - 10, 5, 0};
  EXPECT_FALSE(record.ExpiredAt(INT64_MAX));
  record.renewTimeMs = INT64_MIN + 10;
  record.durationSeconds = -5;
  EXPECT_TRUE(record.ExpiredAt(INT64_MIN + 1));
  record.renewTimeMs = 1000;
  record.durationSeconds = 1;
  EXPECT_FALSE(record.ExpiredAt(2000));
  EXPECT_TRUE(record.ExpiredAt(2001));
}

TEST(OpenLease, RejectsUnknownLocations) {
  EXPECT_FALSE(OpenLease("etcd://x").ok());
  EXPECT_EQ(OpenLease("no-scheme").status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(OpenLease("file:/tmp/x").ok());
}

TEST(OpenLease, ARegisteredSchemeOpensThroughItsOpener) {
  EXPECT_EQ(OpenLease("memory:a/b").status().code(), StatusCode::kInvalid);
  std::string seen;
  RegisterOpener("memory", [&seen](const std::string& rest) -> Result<std::unique_ptr<PrimaryLease>> {
    seen = rest;
    return std::unique_ptr<PrimaryLease>(std::make_unique<FileLease>("/tmp/unused"));
  });
  EXPECT_TRUE(OpenLease("memory:a/b").ok());
  EXPECT_EQ(seen, "a/b");
  // "file" stays the built-in FileLease.
  RegisterOpener("file", [](const std::string&) -> Result<std::unique_ptr<PrimaryLease>> {
    return Status::Internal("must not be called");
  });
  EXPECT_TRUE(OpenLease("file:/tmp/x").ok());
}

}  // namespace
}  // namespace pgrs::lease
