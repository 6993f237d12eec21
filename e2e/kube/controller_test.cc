// Status writes and Events against the test API server.
#include <gtest/gtest.h>

#include "e2e/kube/test_util.h"
#include "operator/kube/events.h"

namespace pgrs::e2e {
namespace {

using kube::Json;

class ControllerWritesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = PlainClient(server_);
    created_ = server_.CallJson("POST", rs_.Path("db"), ReplicaSetObject("demo", 1));
    ASSERT_FALSE(created_.is_null());
  }
  ApiServer server_;
  std::unique_ptr<kube::Client> client_;
  kube::Resource rs_ = kube::ReplicaSetResource();
  Json created_;
};

TEST_F(ControllerWritesTest, AStatusWriteThatConflictsIsRetriedOnAFreshRead) {
  int calls = 0;
  auto written = kube::UpdateStatusWithRetry(client_.get(), rs_, "db", "demo", [&](Json& object) {
    if (++calls == 1) {
      // Someone else changes the object between our read and our write.
      Json patch = Json::object();
      patch["spec"]["instances"] = Json::number(2);
      ASSERT_FALSE(server_.CallJson("PATCH", rs_.Path("db", "demo"), patch).is_null());
    }
    object["status"]["observedGeneration"] = object.at("metadata").at("generation");
  });
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_TRUE(*written);
  EXPECT_EQ(calls, 2);
  Json now = server_.CallJson("GET", rs_.Path("db", "demo"));
  EXPECT_EQ(kube::GetInt(now, {"status", "observedGeneration"}), 2);
  EXPECT_EQ(kube::GetInt(now, {"spec", "instances"}), 2);
}

TEST_F(ControllerWritesTest, AnUnchangedStatusIsNotWritten) {
  auto set = [](Json& object) { object["status"]["phase"] = Json::string("Pending"); };
  ASSERT_TRUE(*kube::UpdateStatusWithRetry(client_.get(), rs_, "db", "demo", set));
  int writes = server_.CountRequests("/status");
  auto again = kube::UpdateStatusWithRetry(client_.get(), rs_, "db", "demo", set);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(server_.CountRequests("/status"), writes);
}

TEST_F(ControllerWritesTest, AStatusWriteForADeletedObjectIsNotFound) {
  ASSERT_EQ(server_.Call("DELETE", rs_.Path("db", "demo")).status, 200);
  auto written = kube::UpdateStatusWithRetry(client_.get(), rs_, "db", "demo", [](Json&) {});
  EXPECT_EQ(written.status().code(), StatusCode::kNotFound);
}

TEST_F(ControllerWritesTest, RepeatedEventsAreCountedOnOneEvent) {
  kube::EventRecorder recorder(client_.get(), "pgrs-operator", "test-host");
  recorder.Record(created_, "Warning", "InvalidSpec", "spec.instances: must be between 1 and 16");
  recorder.Record(created_, "Warning", "InvalidSpec", "spec.instances: must be between 1 and 16");
  recorder.Record(created_, "Normal", "Accepted", "the spec is valid");
  Json events = server_.CallJson("GET", kube::EventResource().Path("db"));
  ASSERT_EQ(events.at("items").as_array().size(), 2u);
  for (const auto& e : events.at("items").as_array()) {
    EXPECT_EQ(kube::GetString(e, {"involvedObject", "uid"}), kube::UidOf(created_));
    EXPECT_EQ(kube::GetString(e, {"involvedObject", "kind"}), "PostgresReplicaSet");
    EXPECT_EQ(kube::GetString(e, {"source", "component"}), "pgrs-operator");
    if (kube::GetString(e, {"reason"}) == "InvalidSpec") {
      EXPECT_EQ(kube::GetInt(e, {"count"}), 2);
      EXPECT_EQ(kube::GetString(e, {"type"}), "Warning");
    } else {
      EXPECT_EQ(kube::GetInt(e, {"count"}), 1);
    }
  }
  EXPECT_EQ(recorder.recorded(), 3);
}

}  // namespace
}  // namespace pgrs::e2e
