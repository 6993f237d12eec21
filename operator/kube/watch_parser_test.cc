#include <gtest/gtest.h>

#include <random>

#include "operator/kube/client.h"

namespace pgrs::kube {
namespace {

std::vector<WatchEvent> FeedAll(WatchStreamParser& parser, const std::vector<std::string>& chunks,
                                Status* last = nullptr) {
  std::vector<WatchEvent> events;
  for (const auto& chunk : chunks) {
    Status s = parser.Feed(chunk, [&](WatchEvent&& e) { events.push_back(std::move(e)); });
    if (last != nullptr && !s.ok()) *last = s;
  }
  return events;
}

const std::string kAdded = R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}})";
const std::string kBookmark = R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})";

TEST(WatchStreamParserTest, AnEventSplitAcrossChunksArrivesOnceWhole) {
  WatchStreamParser parser;
  std::string line = kAdded + "\n";
  std::vector<std::string> chunks;
  for (size_t i = 0; i < line.size(); i += 7) chunks.push_back(line.substr(i, 7));
  auto events = FeedAll(parser, chunks);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "ADDED");
  EXPECT_EQ(NameOf(events[0].object), "a");
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(WatchStreamParserTest, SeveralEventsInOneChunkArriveInOrder) {
  WatchStreamParser parser;
  auto events = FeedAll(parser, {kAdded + "\n" + kBookmark + "\r\n\n" + kAdded.substr(0, 10)});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "ADDED");
  EXPECT_EQ(events[1].type, "BOOKMARK");
  EXPECT_EQ(ResourceVersionOf(events[1].object), "9");
  EXPECT_EQ(parser.buffered(), 10u);
  events = FeedAll(parser, {kAdded.substr(10) + "\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(ResourceVersionOf(events[0].object), "5");
}

TEST(WatchStreamParserTest, ALineThatIsNotAnEventIsReportedAndSkipped) {
  WatchStreamParser parser;
  Status last;
  auto events = FeedAll(parser, {"not json\n" + kAdded + "\n"}, &last);
  EXPECT_EQ(last.code(), StatusCode::kInvalid);
  ASSERT_EQ(events.size(), 1u);
}

TEST(WatchStreamParserTest, AnySplitOfAStreamGivesTheSameEvents) {
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    stream += R"({"type":"MODIFIED","object":{"metadata":{"name":"o)" + std::to_string(i) +
              R"(","resourceVersion":")" + std::to_string(100 + i) + "\"}}}\n";
  }
  std::mt19937 random(7);
  for (int trial = 0; trial < 200; ++trial) {
    WatchStreamParser parser;
    std::vector<std::string> chunks;
    for (size_t at = 0; at < stream.size();) {
      size_t n = 1 + random() % 97;
      chunks.push_back(stream.substr(at, n));
      at += n;
    }
    auto events = FeedAll(parser, chunks);
    ASSERT_EQ(events.size(), 50u) << "trial " << trial;
    for (int i = 0; i < 50; ++i) EXPECT_EQ(ResourceVersionOf(events[i].object), std::to_string(100 + i));
  }
}

TEST(StatusFromResponseTest, HttpCodesMapToWhatTheCallerMayDo) {
  std::string conflict = R"({"kind":"Status","message":"the object has been modified","reason":"Conflict","code":409})";
  EXPECT_EQ(StatusFromResponse(409, conflict, "update x").code(), StatusCode::kConflict);
  EXPECT_NE(StatusFromResponse(409, conflict, "update x").message().find("the object has been modified"),
            std::string::npos);
  Status exists = StatusFromResponse(409, R"({"reason":"AlreadyExists","message":"exists"})", "create x");
  EXPECT_TRUE(IsAlreadyExists(exists));
  EXPECT_FALSE(IsAlreadyExists(StatusFromResponse(409, conflict, "update x")));
  EXPECT_EQ(StatusFromResponse(404, "", "get x").code(), StatusCode::kNotFound);
  EXPECT_EQ(StatusFromResponse(422, "{}", "create x").code(), StatusCode::kInvalid);
  EXPECT_EQ(StatusFromResponse(429, "{}", "get x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromResponse(503, "{}", "get x").code(), StatusCode::kUnavailable);
}

TEST(ResourceTest, PathsForCoreGroupedNamespacedAndClusterWide) {
  EXPECT_EQ(ConfigMapResource().Path("ns", "cm"), "/api/v1/namespaces/ns/configmaps/cm");
  EXPECT_EQ(ReplicaSetResource().Path("ns", "demo", "status"),
            "/apis/pgrs.dev/v1alpha1/namespaces/ns/postgresreplicasets/demo/status");
  EXPECT_EQ(LeaseResource().Path(""), "/apis/coordination.k8s.io/v1/leases");
}

TEST(MetaTest, TimesRoundTrip) {
  auto t = ParseTime("2026-03-04T05:06:07.123456Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatMicroTime(*t), "2026-03-04T05:06:07.123456Z");
  EXPECT_EQ(FormatRfc3339(*ParseTime("2026-03-04T05:06:07Z")), "2026-03-04T05:06:07Z");
  EXPECT_FALSE(ParseTime("yesterday").has_value());
  // Beyond what the clock's nanoseconds hold (overflowed before; found by
  // fuzz/lease_fuzzer).
  EXPECT_FALSE(ParseTime("8794-11-28T04:05:11.000000Z").has_value());
  EXPECT_FALSE(ParseTime("2026-13-04T05:06:07Z").has_value());
}

}  // namespace
}  // namespace pgrs::kube
