// The OpenAPI validator on small schemas: one test per keyword family, with
// the API server's error texts.
#include "e2e/install/openapi_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgrs::openapi {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using web::json::value;

value Json(const std::string& yaml) {
  Result<std::vector<value>> docs = YamlToJson(yaml);
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  return docs.ok() && !docs->empty() ? docs->front() : value::null();
}

Schema MustParse(const std::string& yaml) {
  Result<Schema> schema = ParseSchema(Json(yaml));
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return schema.ok() ? *schema : Schema{};
}

const char kSchema[] = R"(
type: object
properties:
  spec:
    type: object
    default: {name: anon}
    required: [name]
    properties:
      name: {type: string, maxLength: 5, pattern: '^[a-z]+$'}
      count: {type: integer, minimum: 1, maximum: 16, default: 1}
      ratio: {type: number, exclusiveMinimum: true, minimum: 0}
      mode: {type: string, enum: [async, sync], default: async}
      size: {x-kubernetes-int-or-string: true, default: 1Gi}
      flag: {type: boolean, nullable: true}
      tags: {type: array, items: {type: string}, maxItems: 2}
      labels: {type: object, additionalProperties: {type: string}}
      free: {type: object, x-kubernetes-preserve-unknown-fields: true}
      nested:
        type: object
        default: {}
        properties:
          deep: {type: integer, default: 7}
)";

TEST(OpenApiSchemaTest, YamlScalarsAreTypedLikeYaml12CoreSchema) {
  const value v = Json("a: 3\nb: '3'\nc: true\nd: ~\ne: 1.5\nf: 1Gi\ng: [1, x]\n");
  EXPECT_TRUE(v.at("a").is_integer());
  EXPECT_TRUE(v.at("b").is_string());
  EXPECT_TRUE(v.at("c").is_boolean());
  EXPECT_TRUE(v.at("d").is_null());
  EXPECT_TRUE(v.at("e").is_double());
  EXPECT_EQ(v.at("f").as_string(), "1Gi");
  EXPECT_EQ(v.at("g").size(), 2u);
}

TEST(OpenApiSchemaTest, ValidObjectHasNoErrors) {
  const Schema s = MustParse(kSchema);
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: abc, count: 16, ratio: 0.5, mode: sync, size: 10, "
                                     "flag: null, tags: [a, b], labels: {x: y}, free: {any: [1, {}]}}")),
              IsEmpty());
}

TEST(OpenApiSchemaTest, RangesAreReportedWithTheApiServersWording) {
  const Schema s = MustParse(kSchema);
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, count: 0}")),
              ElementsAre("spec.count: Invalid value: 0: spec.count in body should be greater than or equal to 1"));
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, count: 17}")),
              ElementsAre("spec.count: Invalid value: 17: spec.count in body should be less than or equal to 16"));
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, ratio: 0}")),
              ElementsAre("spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"));
}

TEST(OpenApiSchemaTest, EnumTypeRequiredAndStringRulesAreChecked) {
  const Schema s = MustParse(kSchema);
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, mode: fast}")),
              ElementsAre("spec.mode: Unsupported value: \"fast\": supported values: \"async\", \"sync\""));
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, count: '3'}")),
              ElementsAre("spec.count: Invalid value: \"string\": spec.count in body must be of type integer: "
                          "\"string\""));
  EXPECT_THAT(ValidateObject(s, Json("spec: {count: 3}")), ElementsAre("spec.name: Required value"));
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: abcdef}")),
              ElementsAre("spec.name: Too long: may not be longer than 5"));
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: A}")),
              ElementsAre("spec.name: Invalid value: \"A\": spec.name in body should match '^[a-z]+$'"));
}

TEST(OpenApiSchemaTest, IntOrStringNullableItemsAndAdditionalProperties) {
  const Schema s = MustParse(kSchema);
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, size: true}")),
              ElementsAre("spec.size: Invalid value: \"boolean\": spec.size in body must be of type "
                          "integer,string: \"boolean\""));
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, count: null}")),
              ElementsAre("spec.count: Invalid value: \"null\": spec.count in body must be of type integer: "
                          "\"null\""));
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, tags: [a, 1, c]}")),
              ElementsAre("spec.tags: Too many: 3: must have at most 2 items",
                          "spec.tags[1]: Invalid value: \"integer\": spec.tags[1] in body must be of type "
                          "string: \"integer\""));
  EXPECT_THAT(ValidateObject(s, Json("spec: {name: a, labels: {x: 1}}")),
              ElementsAre("spec.labels.x: Invalid value: \"integer\": spec.labels.x in body must be of type "
                          "string: \"integer\""));
}

TEST(OpenApiSchemaTest, DefaultsFillAbsentFieldsTopDownAndReplaceNull) {
  const Schema s = MustParse(kSchema);
  value v = Json("metadata: {name: x}");
  ApplySchemaDefaults(s, v);
  EXPECT_EQ(v.at("spec").serialize(), R"({"name":"anon","count":1,"mode":"async","size":"1Gi","nested":{"deep":7}})");
  value withNull = Json("spec: {name: a, count: null, mode: sync, tags: null}");
  ApplySchemaDefaults(s, withNull);
  EXPECT_EQ(withNull.at("spec").at("count").as_integer(), 1);
  EXPECT_EQ(withNull.at("spec").at("mode").as_string(), "sync");
  EXPECT_FALSE(withNull.at("spec").has_field("tags"));
}

TEST(OpenApiSchemaTest, UnknownFieldsAreFoundAndPrunedExceptUnderPreserveUnknownFields) {
  const Schema s = MustParse(kSchema);
  value v = Json("apiVersion: x/v1\nkind: X\nmetadata: {name: x, anything: 1}\n"
                 "spec: {name: a, bogus: 1, free: {kept: 2}}\nstatus: {}\n");
  EXPECT_THAT(FindUnknownFields(s, v), ElementsAre("unknown field \"spec.bogus\"", "unknown field \"status\""));
  PruneUnknownFields(s, v);
  EXPECT_FALSE(v.at("spec").has_field("bogus"));
  EXPECT_FALSE(v.has_field("status"));
  EXPECT_EQ(v.at("spec").at("free").at("kept").as_integer(), 2);
  EXPECT_EQ(v.at("metadata").at("anything").as_integer(), 1);
}

TEST(OpenApiSchemaTest, StructuralCheckFindsUntypedNodesAndMixedProperties) {
  EXPECT_THAT(CheckStructural(Json(kSchema)), IsEmpty());
  const auto errors = CheckStructural(Json(R"(
type: object
properties:
  a: {description: no type}
  b: {type: object, properties: {x: {type: string}}, additionalProperties: {type: string}}
  c: {type: array}
  d: {type: integer, minimun: 1}
  e: {type: integer, default: "one"}
)"));
  EXPECT_THAT(errors,
              ElementsAre("openAPIV3Schema.properties[a].type: Required value: must not be empty for specified "
                          "object fields",
                          "openAPIV3Schema.properties[b]: properties and additionalProperties are mutually exclusive",
                          "openAPIV3Schema.properties[c].items: Required value: must be specified for arrays",
                          "openAPIV3Schema.properties[d].minimun: keyword not allowed in a CRD schema",
                          "openAPIV3Schema.properties[e].default: <root>: Invalid value: \"string\": <root> in body "
                          "must be of type integer: \"string\""));
}

TEST(OpenApiSchemaTest, BadPatternIsALoadError) {
  Result<Schema> s = ParseSchema(Json("type: string\npattern: '(['\n"));
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace pgrs::openapi
