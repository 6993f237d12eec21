// The client's verbs and error kinds against the test API server.
#include <gtest/gtest.h>

#include "e2e/kube/test_util.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::milliseconds;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = PlainClient(server_);
    ASSERT_NE(client_, nullptr);
  }
  ApiServer server_;
  std::unique_ptr<kube::Client> client_;
  kube::Resource cms_ = kube::ConfigMapResource();
  kube::Resource sets_ = kube::ReplicaSetResource();
};

TEST_F(ClientTest, CreateGetUpdateDeleteRoundTrip) {
  auto created = client_->Create(cms_, "ns1", ConfigMap("a", "1"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(kube::UidOf(*created).empty());
  EXPECT_EQ(kube::NamespaceOf(*created), "ns1");

  auto got = client_->Get(cms_, "ns1", "a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(kube::GetString(*got, {"data", "value"}), "1");

  Json changed = *got;
  changed["data"]["value"] = Json::string("2");
  auto updated = client_->Update(cms_, "ns1", changed);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_NE(kube::ResourceVersionOf(*updated), kube::ResourceVersionOf(*got));

  ASSERT_TRUE(client_->Delete(cms_, "ns1", "a").ok());
  EXPECT_EQ(client_->Get(cms_, "ns1", "a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->Delete(cms_, "ns1", "a").code(), StatusCode::kNotFound);
}

TEST_F(ClientTest, StaleWritesAndDuplicatesAreConflicts) {
  auto v1 = client_->Create(cms_, "ns1", ConfigMap("a", "1"));
  ASSERT_TRUE(v1.ok());
  auto dup = client_->Create(cms_, "ns1", ConfigMap("a", "1"));
  EXPECT_TRUE(kube::IsAlreadyExists(dup.status())) << dup.status().ToString();

  Json first = *v1;
  first["data"]["value"] = Json::string("2");
  ASSERT_TRUE(client_->Update(cms_, "ns1", first).ok());
  first["data"]["value"] = Json::string("3");  // still carries v1's resourceVersion
  auto stale = client_->Update(cms_, "ns1", first);
  EXPECT_EQ(stale.status().code(), StatusCode::kConflict);
  EXPECT_FALSE(kube::IsAlreadyExists(stale.status()));

  kube::DeleteOptions precondition;
  precondition.preconditionResourceVersion = kube::ResourceVersionOf(*v1);
  EXPECT_EQ(client_->Delete(cms_, "ns1", "a", precondition).code(), StatusCode::kConflict);
  EXPECT_TRUE(client_->Get(cms_, "ns1", "a").ok());
}

TEST_F(ClientTest, InvalidInputIsTerminal) {
  Json nameless = ConfigMap("", "1");
  int before = server_.CountRequests("POST");
  auto result = client_->Create(cms_, "ns1", nameless);
  EXPECT_EQ(result.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(server_.CountRequests("POST") - before, 1) << "invalid input must not be retried";
}

TEST_F(ClientTest, GenerationMovesWithSpecOnlyAndStatusGoesThroughItsSubresource) {
  auto created = client_->Create(sets_, "db", ReplicaSetObject("demo", 1));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(kube::GetInt(*created, {"metadata", "generation"}), 1);

  Json withStatus = *created;
  withStatus["status"]["phase"] = Json::string("Running");
  auto statusWritten = client_->UpdateStatus(sets_, "db", withStatus);
  ASSERT_TRUE(statusWritten.ok()) << statusWritten.status().ToString();
  EXPECT_EQ(kube::GetString(*statusWritten, {"status", "phase"}), "Running");
  EXPECT_EQ(kube::GetInt(*statusWritten, {"metadata", "generation"}), 1);

  // The main endpoint ignores status; a label change is not a spec change.
  Json relabel = *statusWritten;
  relabel["metadata"]["labels"]["tier"] = Json::string("gold");
  relabel["status"]["phase"] = Json::string("Hacked");
  auto relabelled = client_->Update(sets_, "db", relabel);
  ASSERT_TRUE(relabelled.ok());
  EXPECT_EQ(kube::GetInt(*relabelled, {"metadata", "generation"}), 1);
  EXPECT_EQ(kube::GetString(*relabelled, {"status", "phase"}), "Running");

  Json patch = Json::object();
  patch["spec"]["instances"] = Json::number(3);
  auto patched = client_->MergePatch(sets_, "db", "demo", patch);
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(kube::GetInt(*patched, {"spec", "instances"}), 3);
  EXPECT_EQ(kube::GetInt(*patched, {"metadata", "generation"}), 2);
  EXPECT_EQ(kube::GetString(*patched, {"metadata", "labels", "tier"}), "gold");

  Json statusPatch = Json::object();
  statusPatch["status"]["readyInstances"] = Json::number(2);
  auto statusPatched = client_->MergePatch(sets_, "db", "demo", statusPatch, true);
  ASSERT_TRUE(statusPatched.ok());
  EXPECT_EQ(kube::GetString(*statusPatched, {"status", "phase"}), "Running");
  EXPECT_EQ(kube::GetInt(*statusPatched, {"metadata", "generation"}), 2);

  // Merge patch removes fields with null and can be conditional.
  Json removeLabel = Json::object();
  removeLabel["metadata"]["labels"]["tier"] = Json::null();
  removeLabel["metadata"]["resourceVersion"] = Json::string(kube::ResourceVersionOf(*created));
  EXPECT_EQ(client_->MergePatch(sets_, "db", "demo", removeLabel).status().code(), StatusCode::kConflict);
  removeLabel["metadata"]["resourceVersion"] = Json::string(kube::ResourceVersionOf(*statusPatched));
  auto unlabelled = client_->MergePatch(sets_, "db", "demo", removeLabel);
  ASSERT_TRUE(unlabelled.ok());
  EXPECT_EQ(kube::GetField(*unlabelled, {"metadata", "labels", "tier"}), nullptr);
}

TEST_F(ClientTest, ScaleSubresourceReadsAndWritesInstances) {
  ASSERT_TRUE(client_->Create(sets_, "db", ReplicaSetObject("demo", 2)).ok());
  auto scale = client_->GetSubresource(sets_, "db", "demo", "scale");
  ASSERT_TRUE(scale.ok());
  EXPECT_EQ(kube::GetInt(*scale, {"spec", "replicas"}), 2);
  Json wanted = *scale;
  wanted["spec"]["replicas"] = Json::number(5);
  ASSERT_TRUE(client_->UpdateSubresource(sets_, "db", "demo", "scale", wanted).ok());
  auto object = client_->Get(sets_, "db", "demo");
  EXPECT_EQ(kube::GetInt(*object, {"spec", "instances"}), 5);
  EXPECT_EQ(kube::GetInt(*object, {"metadata", "generation"}), 2);
}

TEST_F(ClientTest, ListFiltersByLabelAndNamespaceAndPages) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(client_->Create(cms_, i < 5 ? "ns1" : "ns2",
                                ConfigMap("cm" + std::to_string(i), "x", {{"app", i % 2 ? "odd" : "even"}}))
                    .ok());
  }
  auto all = client_->List(cms_, "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 7u);
  EXPECT_EQ(all->resourceVersion, std::to_string(server_.resourceVersion()));
  kube::ListOptions even;
  even.labelSelector = "app=even";
  EXPECT_EQ(client_->List(cms_, "ns1", even)->items.size(), 3u);
  even.labelSelector = "app in (odd,other),app!=even";
  EXPECT_EQ(client_->List(cms_, "", even)->items.size(), 3u);
  kube::ListOptions paged;
  paged.limit = 2;
  int before = server_.CountRequests("GET /api/v1/namespaces/ns1/configmaps");
  auto pages = client_->List(cms_, "ns1", paged);
  ASSERT_TRUE(pages.ok());
  EXPECT_EQ(pages->items.size(), 5u);
  EXPECT_EQ(server_.CountRequests("GET /api/v1/namespaces/ns1/configmaps") - before, 3);
}

TEST_F(ClientTest, DeletingAnOwnerCascadesToItsDependentsUnlessOrphaned) {
  auto owner = client_->Create(sets_, "db", ReplicaSetObject("demo", 1));
  ASSERT_TRUE(owner.ok());
  auto owned = [&](const std::string& name) {
    Json cm = ConfigMap(name, "x");
    Json ref = Json::object();
    ref["apiVersion"] = Json::string("pgrs.dev/v1alpha1");
    ref["kind"] = Json::string("PostgresReplicaSet");
    ref["name"] = Json::string("demo");
    ref["uid"] = Json::string(kube::UidOf(*owner));
    cm["metadata"]["ownerReferences"][0] = ref;
    return cm;
  };
  ASSERT_TRUE(client_->Create(cms_, "db", owned("demo-config")).ok());
  ASSERT_TRUE(client_->Create(cms_, "db", ConfigMap("unrelated", "x")).ok());
  ASSERT_TRUE(client_->Delete(sets_, "db", "demo").ok());
  EXPECT_EQ(client_->Get(cms_, "db", "demo-config").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(client_->Get(cms_, "db", "unrelated").ok());

  owner = client_->Create(sets_, "db", ReplicaSetObject("demo", 1));
  ASSERT_TRUE(client_->Create(cms_, "db", owned("kept")).ok());
  kube::DeleteOptions orphan;
  orphan.propagationPolicy = "Orphan";
  ASSERT_TRUE(client_->Delete(sets_, "db", "demo", orphan).ok());
  auto kept = client_->Get(cms_, "db", "kept");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kube::GetField(*kept, {"metadata", "ownerReferences"}), nullptr);
}

TEST_F(ClientTest, FinalizersHoldDeletionUntilRemoved) {
  Json cm = ConfigMap("held", "x");
  cm["metadata"]["finalizers"][0] = Json::string("pgrs.dev/cleanup");
  ASSERT_TRUE(client_->Create(cms_, "ns1", cm).ok());
  ASSERT_TRUE(client_->Delete(cms_, "ns1", "held").ok());
  auto terminating = client_->Get(cms_, "ns1", "held");
  ASSERT_TRUE(terminating.ok());
  EXPECT_FALSE(kube::GetString(*terminating, {"metadata", "deletionTimestamp"}).empty());
  Json release = Json::object();
  release["metadata"]["finalizers"] = Json::array();
  ASSERT_TRUE(client_->MergePatch(cms_, "ns1", "held", release).ok());
  EXPECT_EQ(client_->Get(cms_, "ns1", "held").status().code(), StatusCode::kNotFound);
}

TEST_F(ClientTest, ServerErrorsAndClosedConnectionsAreRetried) {
  ASSERT_TRUE(client_->Create(cms_, "ns1", ConfigMap("a", "1")).ok());
  server_.AddFault({Fault::Kind::kStatus, "GET", "/configmaps/a", 503, 0, milliseconds(0), 2});
  server_.AddFault({Fault::Kind::kClose, "GET", "/configmaps/a", 0, 0, milliseconds(0), 1});
  int before = server_.CountRequests("GET /api/v1/namespaces/ns1/configmaps/a");
  auto got = client_->Get(cms_, "ns1", "a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(server_.CountRequests("GET /api/v1/namespaces/ns1/configmaps/a") - before, 4);
}

TEST_F(ClientTest, TooManyRequestsHonoursRetryAfter) {
  ASSERT_TRUE(client_->Create(cms_, "ns1", ConfigMap("a", "1")).ok());
  server_.AddFault({Fault::Kind::kStatus, "GET", "/configmaps/a", 429, 1, milliseconds(0), 1});
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(client_->Get(cms_, "ns1", "a").ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(950));
}

TEST_F(ClientTest, PersistentFailuresEndAsUnavailableAfterTheLastAttempt) {
  kube::ClientOptions options;
  options.maxAttempts = 3;
  auto client = PlainClient(server_, options);
  server_.AddFault({Fault::Kind::kStatus, "", "/configmaps", 500, 0, milliseconds(0), -1});
  int before = server_.CountRequests("configmaps");
  auto result = client->List(cms_, "ns1");
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(server_.CountRequests("configmaps") - before, 3);
}

TEST_F(ClientTest, ASlowServerTimesOutAsUnavailable) {
  kube::ClientOptions options;
  options.requestTimeout = milliseconds(300);
  options.maxAttempts = 1;
  auto client = PlainClient(server_, options);
  server_.AddFault({Fault::Kind::kDelay, "GET", "/configmaps", 0, 0, milliseconds(1500), 1});
  auto result = client->List(cms_, "ns1");
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << result.status().ToString();
}

TEST(ClientIpv6Test, APlainHttpServerOnAnIpv6LiteralIsReached) {
  ApiServerOptions options;
  options.bindAddress = "::1";
  ApiServer server(options);
  ASSERT_TRUE(server.Start().ok());
  auto client = PlainClient(server);
  auto created = client->Create(kube::ConfigMapResource(), "ns1", ConfigMap("v6", "x"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(client->Get(kube::ConfigMapResource(), "ns1", "v6").ok());
}

TEST_F(ClientTest, ADownServerIsUnavailable) {
  kube::ClientOptions options;
  options.maxAttempts = 2;
  auto client = PlainClient(server_, options);
  server_.Stop();
  EXPECT_EQ(client->Get(cms_, "ns1", "a").status().code(), StatusCode::kUnavailable);
}

// --- watches -------------------------------------------------------------

struct Recorder {
  std::mutex mu;
  std::vector<kube::WatchEvent> events;
  void Add(const kube::WatchEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
  }
  size_t Count(const std::string& type) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(events.begin(), events.end(), [&](const auto& e) { return e.type == type; });
  }
};

TEST_F(ClientTest, WatchDeliversChangesAfterAVersionAndEndsOnTimeout) {
  auto a = client_->Create(cms_, "ns1", ConfigMap("a", "1"));
  ASSERT_TRUE(a.ok());
  Recorder recorder;
  kube::WatchOptions options;
  options.resourceVersion = kube::ResourceVersionOf(*a);
  options.timeoutSeconds = 2;
  options.allowBookmarks = false;
  std::thread writer([&] {
    EXPECT_TRUE(WaitFor([&] { return server_.activeWatches() == 1; }));
    EXPECT_TRUE(client_->Create(cms_, "ns1", ConfigMap("b", "1")).ok());
    EXPECT_TRUE(client_->Create(cms_, "ns2", ConfigMap("other-namespace", "1")).ok());
    EXPECT_TRUE(client_->Delete(cms_, "ns1", "a").ok());
  });
  auto end = client_->Watch(cms_, "ns1", options, [&](const kube::WatchEvent& e) { recorder.Add(e); });
  writer.join();
  EXPECT_TRUE(end.status.ok()) << end.status.ToString();
  ASSERT_EQ(recorder.events.size(), 2u);
  EXPECT_EQ(recorder.events[0].type, "ADDED");
  EXPECT_EQ(kube::NameOf(recorder.events[0].object), "b");
  EXPECT_EQ(recorder.events[1].type, "DELETED");
  EXPECT_EQ(kube::NameOf(recorder.events[1].object), "a");
}

TEST(ClientWatchTest, EventsSplitIntoTinyChunksArriveWholeWithBookmarks) {
  ApiServerOptions options;
  options.splitWatchChunks = true;
  options.bookmarkInterval = milliseconds(100);
  ApiServer server(options);
  ASSERT_TRUE(server.Start().ok());
  auto client = PlainClient(server);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client->Create(kube::ConfigMapResource(), "ns1", ConfigMap("cm" + std::to_string(i), "v")).ok());
  }
  Recorder recorder;
  kube::WatchOptions watch;
  watch.timeoutSeconds = 1;
  auto end = client->Watch(kube::ConfigMapResource(), "ns1", watch,
                           [&](const kube::WatchEvent& e) { recorder.Add(e); });
  EXPECT_TRUE(end.status.ok()) << end.status.ToString();
  EXPECT_EQ(recorder.Count("ADDED"), 20u);
  EXPECT_GE(recorder.Count("BOOKMARK"), 3u);
}

TEST_F(ClientTest, WatchFromACompactedVersionEndsExpired) {
  auto a = client_->Create(cms_, "ns1", ConfigMap("a", "1"));
  ASSERT_TRUE(client_->Create(cms_, "ns1", ConfigMap("b", "1")).ok());
  server_.Compact();
  kube::WatchOptions options;
  options.resourceVersion = kube::ResourceVersionOf(*a);
  auto end = client_->Watch(cms_, "ns1", options, [](const kube::WatchEvent&) {});
  EXPECT_TRUE(end.expired);
  EXPECT_EQ(end.status.code(), StatusCode::kConflict);
}

TEST_F(ClientTest, CancelEndsABlockedWatchPromptly) {
  kube::WatchCanceller canceller;
  std::thread stopper([&] {
    EXPECT_TRUE(WaitFor([&] { return server_.activeWatches() == 1; }));
    canceller.Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  kube::WatchOptions options;
  options.timeoutSeconds = 60;
  auto end = client_->Watch(cms_, "ns1", options, [](const kube::WatchEvent&) {}, &canceller);
  stopper.join();
  EXPECT_TRUE(end.cancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(WaitFor([&] { return server_.activeWatches() == 0; }));
}

TEST_F(ClientTest, AServerRestartEndsTheWatchWithAnError) {
  std::thread restarter([&] {
    EXPECT_TRUE(WaitFor([&] { return server_.activeWatches() == 1; }));
    EXPECT_TRUE(server_.Restart().ok());
  });
  kube::WatchOptions options;
  options.timeoutSeconds = 60;
  auto end = client_->Watch(cms_, "ns1", options, [](const kube::WatchEvent&) {});
  restarter.join();
  EXPECT_FALSE(end.cancelled);
  // Either a clean EOF or a network error; both tell the caller to resume.
  EXPECT_TRUE(end.status.ok() || end.status.code() == StatusCode::kUnavailable) << end.status.ToString();
}

TEST_F(ClientTest, ASilentWatchIsAbandonedAfterTimeoutPlusSlack) {
  kube::ClientOptions options;
  options.watchIdleSlack = milliseconds(500);
  auto client = PlainClient(server_, options);
  // The server stalls: no headers, no events, no bookmarks, no end.
  server_.AddFault({Fault::Kind::kDelay, "GET", "watch=true", 0, 0, milliseconds(2500), 1});
  kube::WatchOptions watch;
  watch.timeoutSeconds = 1;
  auto start = std::chrono::steady_clock::now();
  auto end = client->Watch(cms_, "ns1", watch, [](const kube::WatchEvent&) {});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(end.status.code(), StatusCode::kUnavailable) << end.status.ToString();
  EXPECT_LT(took, std::chrono::milliseconds(2400));
}

}  // namespace
}  // namespace pgrs::e2e
