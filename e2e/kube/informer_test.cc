// The informer against the test API server: sync, resume after restarts,
// relist after 410, bookmarks, and the work queue fed by its handlers.
#include <gtest/gtest.h>

#include <random>

#include "e2e/kube/test_util.h"
#include "operator/kube/informer.h"
#include "operator/kube/workqueue.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::milliseconds;

struct Seen {
  std::mutex mu;
  std::vector<std::string> adds, updates, deletes;
  kube::InformerHandlers Handlers() {
    return {[this](const Json& o) { Push(adds, kube::KeyOf(o)); },
            [this](const Json&, const Json& o) { Push(updates, kube::KeyOf(o)); },
            [this](const Json& o) { Push(deletes, kube::KeyOf(o)); }};
  }
  void Push(std::vector<std::string>& v, const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    v.push_back(key);
  }
  bool Has(std::vector<std::string>& v, const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    return std::find(v.begin(), v.end(), key) != v.end();
  }
};

class InformerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.bookmarkInterval = milliseconds(200);
    server_ = std::make_unique<ApiServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    client_ = PlainClient(*server_);
  }
  std::unique_ptr<kube::Informer> StartInformer(const std::string& ns, kube::InformerOptions options = {}) {
    options.retry = {milliseconds(20), milliseconds(200), 2.0, 0.2};
    auto informer = std::make_unique<kube::Informer>(client_.get(), cms_, ns, options, seen_.Handlers());
    informer->Start();
    EXPECT_TRUE(informer->WaitForSync(std::chrono::seconds(5)));
    return informer;
  }
  void Put(const std::string& ns, const std::string& name, const std::string& value) {
    auto existing = server_->CallJson("GET", cms_.Path(ns, name));
    if (existing.is_null()) {
      ASSERT_FALSE(server_->CallJson("POST", cms_.Path(ns), ConfigMap(name, value)).is_null());
    } else {
      existing["data"]["value"] = Json::string(value);
      ASSERT_FALSE(server_->CallJson("PUT", cms_.Path(ns, name), existing).is_null());
    }
  }
  std::string ValueOf(kube::Informer& informer, const std::string& key) {
    auto o = informer.Get(key);
    return o ? kube::GetString(*o, {"data", "value"}) : "<absent>";
  }
  int Lists() { return server_->CountRequests("GET /api/v1/namespaces/ns1/configmaps") - Watches(); }
  int Watches() { return server_->CountRequests("watch=true"); }

  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<kube::Client> client_;
  kube::Resource cms_ = kube::ConfigMapResource();
  Seen seen_;
};

TEST_F(InformerTest, TheCacheFollowsListAndWatch) {
  Put("ns1", "a", "1");
  Put("ns2", "elsewhere", "1");
  auto informer = StartInformer("ns1");
  EXPECT_EQ(informer->Size(), 1u);
  EXPECT_TRUE(seen_.Has(seen_.adds, "ns1/a"));
  Put("ns1", "b", "1");
  Put("ns1", "a", "2");
  ASSERT_EQ(server_->Call("DELETE", cms_.Path("ns1", "b")).status, 200);
  EXPECT_TRUE(WaitFor([&] { return seen_.Has(seen_.deletes, "ns1/b"); }));
  EXPECT_EQ(ValueOf(*informer, "ns1/a"), "2");
  EXPECT_TRUE(seen_.Has(seen_.adds, "ns1/b"));
  EXPECT_TRUE(seen_.Has(seen_.updates, "ns1/a"));
  EXPECT_FALSE(informer->Get("ns2/elsewhere").has_value());
  EXPECT_EQ(informer->stats().lists, 1);
}

TEST_F(InformerTest, AfterAServerRestartTheWatchResumesFromTheLastVersionWithoutRelisting) {
  Put("ns1", "a", "1");
  auto informer = StartInformer("ns1");
  ASSERT_TRUE(WaitFor([&] { return server_->activeWatches() == 1; }));
  int listsBefore = Lists();
  server_->Stop();
  Put("ns1", "a", "changed-while-down");  // straight into the store
  Put("ns1", "c", "created-while-down");
  ASSERT_TRUE(server_->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return ValueOf(*informer, "ns1/c") == "created-while-down"; }));
  EXPECT_EQ(ValueOf(*informer, "ns1/a"), "changed-while-down");
  EXPECT_EQ(Lists(), listsBefore) << "a resumed watch must not relist";
  EXPECT_EQ(informer->stats().lists, 1);
  EXPECT_EQ(informer->stats().expiredRelists, 0);
}

TEST_F(InformerTest, AnExpiredVersionLeadsToARelistThatReportsMissedDeletes) {
  Put("ns1", "a", "1");
  Put("ns1", "doomed", "1");
  auto informer = StartInformer("ns1");
  ASSERT_TRUE(WaitFor([&] { return server_->activeWatches() == 1; }));
  server_->Stop();
  ASSERT_EQ(server_->Call("DELETE", cms_.Path("ns1", "doomed")).status, 200);
  Put("ns1", "a", "2");
  // Unrelated writes after the compaction: bookmarks cannot have covered them.
  server_->Compact();
  ASSERT_TRUE(server_->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return informer->stats().expiredRelists >= 1; }));
  EXPECT_TRUE(WaitFor([&] { return seen_.Has(seen_.deletes, "ns1/doomed"); }));
  EXPECT_EQ(ValueOf(*informer, "ns1/a"), "2");
  EXPECT_FALSE(informer->Get("ns1/doomed").has_value());
  EXPECT_EQ(informer->stats().lists, 2);
}

TEST_F(InformerTest, BookmarksCarryTheVersionForwardSoAResumeAfterCompactionDoesNotRelist) {
  Put("ns1", "a", "1");
  auto informer = StartInformer("ns1");
  std::string listed = informer->stats().resourceVersion;
  // Writes elsewhere move the global version; only bookmarks tell us.
  for (int i = 0; i < 5; ++i) Put("other", "x" + std::to_string(i), "v");
  std::string now = std::to_string(server_->resourceVersion());
  ASSERT_TRUE(WaitFor([&] { return informer->stats().resourceVersion == now; }));
  ASSERT_NE(listed, now);
  ASSERT_TRUE(server_->Restart(/*compact=*/true).ok());
  Put("ns1", "b", "after-restart");
  EXPECT_TRUE(WaitFor([&] { return ValueOf(*informer, "ns1/b") == "after-restart"; }));
  EXPECT_EQ(informer->stats().expiredRelists, 0);
  EXPECT_EQ(informer->stats().lists, 1);
}

TEST_F(InformerTest, WatchesThatTheServerEndsAreRenewedWithoutRelisting) {
  kube::InformerOptions options;
  options.watchTimeoutSeconds = 1;
  auto informer = StartInformer("ns1", options);
  EXPECT_TRUE(WaitFor([&] { return informer->stats().watches >= 3; }, std::chrono::seconds(6)));
  Put("ns1", "late", "1");
  EXPECT_TRUE(WaitFor([&] { return informer->Get("ns1/late").has_value(); }));
  EXPECT_EQ(informer->stats().lists, 1);
}

TEST_F(InformerTest, ASilentWatchIsAbandonedAndResumedFromTheLastVersion) {
  kube::ClientOptions clientOptions;
  clientOptions.watchIdleSlack = milliseconds(300);
  client_ = PlainClient(*server_, clientOptions);
  Put("ns1", "a", "1");
  kube::InformerOptions options;
  options.watchTimeoutSeconds = 1;
  auto informer = StartInformer("ns1", options);
  ASSERT_TRUE(WaitFor([&] { return server_->activeWatches() == 1; }));
  // The next watch request hangs without a byte: a half-dead connection.
  server_->AddFault({Fault::Kind::kDelay, "GET", "watch=true", 0, 0, milliseconds(3000), 1});
  int watchesBefore = Watches();
  ASSERT_TRUE(WaitFor([&] { return Watches() > watchesBefore; }, milliseconds(3000)));
  Put("ns1", "a", "2");
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return ValueOf(*informer, "ns1/a") == "2"; }, milliseconds(5000)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000)) << "waited for the hung request (3 s) to end";
  EXPECT_EQ(informer->stats().lists, 1);
}

TEST_F(InformerTest, ErrorsOnListAndWatchAreRetriedWithBackoff) {
  server_->AddFault({Fault::Kind::kStatus, "GET", "/configmaps", 500, 0, milliseconds(0), 12});
  Put("ns1", "a", "1");
  auto informer = StartInformer("ns1");  // the client's own retries, then the informer's
  EXPECT_EQ(ValueOf(*informer, "ns1/a"), "1");
  server_->AddFault({Fault::Kind::kStatus, "GET", "watch=true", 503, 0, milliseconds(0), 3});
  server_->AddFault({Fault::Kind::kClose, "GET", "watch=true", 0, 0, milliseconds(0), 1});
  ASSERT_TRUE(server_->Restart().ok());
  Put("ns1", "a", "2");
  EXPECT_TRUE(WaitFor([&] { return ValueOf(*informer, "ns1/a") == "2"; }));
  EXPECT_GE(informer->stats().watchErrors, 1);
}

TEST_F(InformerTest, ALabelSelectorCachesOnlyMatchingObjectsAsLabelsChange) {
  kube::InformerOptions options;
  options.labelSelector = "role=primary";
  auto informer = StartInformer("ns1", options);
  auto label = [&](const std::string& name, const std::string& role) {
    auto existing = server_->CallJson("GET", cms_.Path("ns1", name));
    if (existing.is_null()) {
      ASSERT_FALSE(server_->CallJson("POST", cms_.Path("ns1"), ConfigMap(name, "v", {{"role", role}})).is_null());
    } else {
      existing["metadata"]["labels"]["role"] = Json::string(role);
      ASSERT_FALSE(server_->CallJson("PUT", cms_.Path("ns1", name), existing).is_null());
    }
  };
  label("db-1", "primary");
  label("db-2", "standby");
  ASSERT_TRUE(WaitFor([&] { return informer->Get("ns1/db-1").has_value(); }));
  // A switchover: the labels move, and so does the cache.
  label("db-1", "standby");
  label("db-2", "primary");
  EXPECT_TRUE(WaitFor([&] { return informer->Get("ns1/db-2").has_value() && !informer->Get("ns1/db-1"); }));
  EXPECT_TRUE(seen_.Has(seen_.deletes, "ns1/db-1"));
  EXPECT_EQ(informer->Size(), 1u);
}

TEST_F(InformerTest, UnderChurnRestartsAndCompactionsTheCacheConvergesToTheServer) {
  auto informer = StartInformer("ns1");
  auto serverState = [&] {
    std::map<std::string, std::string> state;
    Json list = server_->CallJson("GET", cms_.Path("ns1"));
    for (const auto& item : list.at("items").as_array()) state[kube::KeyOf(item)] = kube::ResourceVersionOf(item);
    return state;
  };
  auto cacheState = [&] {
    std::map<std::string, std::string> state;
    for (const auto& item : informer->List()) state[kube::KeyOf(item)] = kube::ResourceVersionOf(item);
    return state;
  };
  std::mt19937 random(11);
  for (int round = 0; round < 8; ++round) {
    for (int step = 0; step < 50; ++step) {
      std::string name = "o" + std::to_string(random() % 40);
      int action = static_cast<int>(random() % 20);
      if (action < 12) {
        Put("ns1", name, std::to_string(step));
      } else if (action < 19) {
        server_->Call("DELETE", cms_.Path("ns1", name));
      } else {
        ASSERT_TRUE(server_->Restart(/*compact=*/random() % 2 == 0).ok());
      }
      if (step % 10 == 0) std::this_thread::sleep_for(milliseconds(5));  // let some events stream
    }
    ASSERT_TRUE(WaitFor([&] { return cacheState() == serverState(); })) << "round " << round;
  }
  auto stats = informer->stats();
  EXPECT_GE(stats.watches, 2);
  EXPECT_GE(stats.events, 100);
}

TEST_F(InformerTest, StopReturnsPromptlyDuringAWatch) {
  auto informer = StartInformer("ns1");
  ASSERT_TRUE(WaitFor([&] { return server_->activeWatches() == 1; }));
  auto start = std::chrono::steady_clock::now();
  informer->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(WaitFor([&] { return server_->activeWatches() == 0; }));
}

TEST_F(InformerTest, HandlersFeedAWorkQueueThatSeesEachChangedKey) {
  kube::WorkQueue queue;
  auto enqueue = [&](const Json& o) { queue.Add(kube::KeyOf(o)); };
  kube::Informer informer(client_.get(), cms_, "", {}, {enqueue, [&](const Json&, const Json& o) { enqueue(o); },
                                                         enqueue});
  Put("ns1", "a", "1");
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(std::chrono::seconds(5)));
  Put("ns2", "b", "1");
  std::set<std::string> keys;
  std::thread worker([&] {
    std::string key;
    while (keys.size() < 2 && queue.Get(&key)) {
      keys.insert(key);
      queue.Done(key);
    }
  });
  bool done = WaitFor([&] { return queue.Len() == 0 && informer.Size() == 2; });
  queue.ShutDown();
  worker.join();
  informer.Stop();
  EXPECT_TRUE(done);
  EXPECT_EQ(keys, (std::set<std::string>{"ns1/a", "ns2/b"}));
}

}  // namespace
}  // namespace pgrs::e2e
