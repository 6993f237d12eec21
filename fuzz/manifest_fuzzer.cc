// The manifest decoder (operator/api/codec.cc) on arbitrary bytes, YAML or
// JSON. What it accepts must survive EncodeJson and EncodeYaml: decoded
// again, the object is the same. The same for ParseManifest's defaulted and
// validated object, and for the status codec (status.json in local mode).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/check.h"
#include "operator/api/types.h"

namespace {

using pgrs::api::DecodeReplicaSet;
using pgrs::api::PostgresReplicaSet;

std::string Errors(const pgrs::api::DecodeResult& r) {
  std::string text;
  for (const auto& e : r.errors) text += e.ToString() + "; ";
  return text;
}

void CheckRoundTrip(const PostgresReplicaSet& object) {
  const std::string json = pgrs::api::EncodeJson(object);
  auto fromJson = DecodeReplicaSet(json);
  PGRS_FUZZ_CHECK(fromJson.object.has_value(), "EncodeJson's text does not decode: " + Errors(fromJson) + "\n" + json);
  PGRS_FUZZ_CHECK(*fromJson.object == object, "JSON round trip changed the object:\n" + json + "\n" +
                                                  pgrs::api::EncodeJson(*fromJson.object));

  const std::string pretty = pgrs::api::EncodeJson(object, /*pretty=*/true);
  auto fromPretty = DecodeReplicaSet(pretty);
  PGRS_FUZZ_CHECK(fromPretty.object.has_value(), "pretty JSON does not decode: " + Errors(fromPretty) + "\n" + pretty);
  PGRS_FUZZ_CHECK(*fromPretty.object == object, "pretty JSON round trip changed the object:\n" + pretty);

  const std::string yaml = pgrs::api::EncodeYaml(object);
  auto fromYaml = DecodeReplicaSet(yaml);
  PGRS_FUZZ_CHECK(fromYaml.object.has_value(), "EncodeYaml's text does not decode: " + Errors(fromYaml) + "\n" + yaml);
  PGRS_FUZZ_CHECK(*fromYaml.object == object, "YAML round trip changed the object:\n" + yaml + "\n" +
                                                  pgrs::api::EncodeYaml(*fromYaml.object));

  const std::string status = pgrs::api::EncodeStatusJson(object.status);
  auto decodedStatus = pgrs::api::DecodeStatusJson(status);
  PGRS_FUZZ_CHECK(decodedStatus.ok(), "EncodeStatusJson's text does not decode: " + decodedStatus.status().message());
  PGRS_FUZZ_CHECK(*decodedStatus == object.status, "status round trip changed the status:\n" + status);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  auto decoded = DecodeReplicaSet(text);
  PGRS_FUZZ_CHECK(decoded.object.has_value() == decoded.errors.empty(), "an object and errors, or neither");
  if (decoded.object) CheckRoundTrip(*decoded.object);

  auto parsed = pgrs::api::ParseManifest(text);
  PGRS_FUZZ_CHECK(parsed.object.has_value() == parsed.errors.empty(), "an object and errors, or neither");
  if (parsed.object) {
    PGRS_FUZZ_CHECK(decoded.object.has_value(), "ParseManifest accepted what DecodeReplicaSet refused");
    PostgresReplicaSet again = *parsed.object;
    pgrs::api::ApplyDefaults(again.spec);
    PGRS_FUZZ_CHECK(again == *parsed.object, "ApplyDefaults is not idempotent");
    PGRS_FUZZ_CHECK(pgrs::api::Validate(again).empty(), "a parsed manifest fails Validate");
    CheckRoundTrip(*parsed.object);
    for (auto mode : {pgrs::api::Mode::kLocal, pgrs::api::Mode::kKubernetes}) {
      for (const auto& e : pgrs::api::ValidateForMode(*parsed.object, mode)) {
        PGRS_FUZZ_CHECK(!e.path.empty(), "a ValidateForMode error without a field path: " + e.message);
      }
    }
    PGRS_FUZZ_CHECK(pgrs::api::ValidateUpdate(*parsed.object, *parsed.object).empty(),
                    "an object may not replace itself");
  }

  auto status = pgrs::api::DecodeStatusJson(text);
  if (status.ok()) {
    const std::string encoded = pgrs::api::EncodeStatusJson(*status);
    auto again = pgrs::api::DecodeStatusJson(encoded);
    PGRS_FUZZ_CHECK(again.ok(), "EncodeStatusJson's text does not decode: " + again.status().message());
    PGRS_FUZZ_CHECK(*again == *status, "status round trip changed the status:\n" + encoded);
  }
  return 0;
}
