// The watch event stream parser (kube::WatchStreamParser) on arbitrary
// bytes, split into chunks where the input's first bytes say: any split of
// a stream gives the same events, in the same order, as the whole stream at
// once, and the same partial line is left buffered.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fuzz/check.h"
#include "operator/kube/client.h"
#include "operator/kube/meta.h"

namespace {

struct Seen {
  std::vector<std::pair<std::string, std::string>> events;  // type, the object's JSON
  bool invalid = false;
  size_t buffered = 0;
};

Seen Feed(const std::string& stream, const std::vector<size_t>& cuts) {
  pgrs::kube::WatchStreamParser parser;
  Seen seen;
  size_t at = 0;
  auto feed = [&](std::string_view bytes) {
    auto status = parser.Feed(bytes, [&](pgrs::kube::WatchEvent&& e) {
      seen.events.emplace_back(e.type, e.object.serialize());
    });
    if (!status.ok()) {
      PGRS_FUZZ_CHECK(status.code() == pgrs::StatusCode::kInvalid, status.message());
      seen.invalid = true;
    }
  };
  for (size_t cut : cuts) {
    size_t n = std::min(cut, stream.size() - at);
    feed(std::string_view(stream).substr(at, n));
    at += n;
  }
  feed(std::string_view(stream).substr(at));
  seen.buffered = parser.buffered();
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider provider(data, size);
  std::vector<size_t> cuts;
  size_t count = provider.ConsumeIntegralInRange<size_t>(0, 16);
  for (size_t i = 0; i < count; ++i) cuts.push_back(provider.ConsumeIntegralInRange<size_t>(0, 64));
  const std::string stream = provider.ConsumeRemainingBytesAsString();

  Seen whole = Feed(stream, {});
  Seen split = Feed(stream, cuts);
  PGRS_FUZZ_CHECK(whole.events == split.events, "a split stream gave other events");
  PGRS_FUZZ_CHECK(whole.invalid == split.invalid, "a split stream changed whether a line was invalid");
  PGRS_FUZZ_CHECK(whole.buffered == split.buffered, "a split stream left another partial line");
  size_t lastNewline = stream.rfind('\n');
  size_t tail = lastNewline == std::string::npos ? stream.size() : stream.size() - lastNewline - 1;
  PGRS_FUZZ_CHECK(whole.buffered == tail, "the buffer is not the text after the last newline");
  for (const auto& [type, json] : whole.events) {
    // What the informer does with an event's object.
    auto object = pgrs::kube::ParseJson(json);
    PGRS_FUZZ_CHECK(object.has_value(), "an event object that does not parse again: " + json);
    (void)pgrs::kube::NameOf(*object);
    (void)pgrs::kube::ResourceVersionOf(*object);
  }
  return 0;
}
