// A small OpenAPI v3 validator for CustomResourceDefinition schemas: what a
// Kubernetes API server does with a custom resource's openAPIV3Schema before
// it stores the object (defaulting, pruning, validation), minus CEL rules
// (x-kubernetes-validations are loaded and listed, not evaluated).
//
// Supported keywords: type, properties, required, enum, minimum/maximum
// (and exclusive*), minLength/maxLength, minItems/maxItems, pattern
// (ECMAScript syntax, which covers the RE2 subset CRDs use), items,
// additionalProperties, default, nullable, format (carried, not checked),
// x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields,
// x-kubernetes-list-type/-map-keys, x-kubernetes-validations.
//
// Error texts follow the API server's field.Error forms so that tests and
// the test API server read like a real cluster:
//   spec.instances: Invalid value: 0: spec.instances in body should be greater than or equal to 1
//   spec.replication.mode: Unsupported value: "fast": supported values: "async", "sync"
//   spec.instances: Invalid value: "string": spec.instances in body must be of type integer: "string"
#pragma once

#include <cpprest/json.h>

#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "operator/util/status.h"

namespace pgrs::openapi {

// One CEL rule as written in x-kubernetes-validations.
struct ValidationRule {
  std::string rule;
  std::string message;
  std::string fieldPath;
  std::string reason;
};

// One node of a structural schema, with its children resolved.
struct Schema {
  // Defined where Schema is complete: `properties` holds pairs of Schema,
  // which clang's libstdc++ checks will not instantiate inside the class.
  Schema();
  Schema(const Schema&);
  Schema(Schema&&) noexcept;
  Schema& operator=(const Schema&);
  Schema& operator=(Schema&&) noexcept;
  ~Schema();

  std::string type;  // "", object, array, string, integer, number, boolean
  std::string format;
  std::string description;
  std::vector<std::pair<std::string, Schema>> properties;  // in file order
  std::vector<std::string> required;
  std::shared_ptr<Schema> items;
  std::shared_ptr<Schema> additionalProperties;  // a schema for every other key
  std::vector<web::json::value> enumValues;
  std::optional<double> minimum, maximum;
  bool exclusiveMinimum = false, exclusiveMaximum = false;
  std::optional<int64_t> minLength, maxLength, minItems, maxItems;
  std::string pattern;
  std::shared_ptr<const std::regex> patternRegex;
  std::optional<web::json::value> defaultValue;
  bool nullable = false;
  bool intOrString = false;
  bool preserveUnknownFields = false;
  std::string listType;
  std::vector<std::string> listMapKeys;
  std::vector<ValidationRule> validations;

  // The child schema of property `name`, or nullptr.
  const Schema* Property(const std::string& name) const;
};

// What one version of a CRD declares besides its schema.
struct CrdVersion {
  std::string name;
  bool served = false;
  bool storage = false;
  Schema schema;                    // openAPIV3Schema
  web::json::value rawSchema;       // the same as JSON, for CheckStructural
  web::json::value subresources;    // null when absent
  web::json::value printerColumns;  // additionalPrinterColumns, null when absent
};

struct Crd {
  std::string group, kind, plural, singular, listKind, scope;
  std::vector<std::string> shortNames;
  std::vector<CrdVersion> versions;
  // The storage version (exactly one must exist).
  const CrdVersion& StorageVersion() const;
};

// YAML text (one or more documents) as JSON values, typed the way YAML 1.2's
// core schema and JSON type scalars: plain 3 is an integer, "3" a string,
// true a boolean, ~ null. Empty documents are skipped.
Result<std::vector<web::json::value>> YamlToJson(const std::string& yamlText);

// Turns a JSON openAPIV3Schema into a Schema. Invalid when a keyword has the
// wrong type or a pattern does not compile.
Result<Schema> ParseSchema(const web::json::value& json);

// Reads a CustomResourceDefinition (apiextensions.k8s.io/v1, YAML or JSON).
Result<Crd> LoadCrd(const std::string& yamlText);

// The openAPIV3Schema of the CRD's storage version.
Result<Schema> LoadCrdSchema(const std::string& yamlText);

// The rules Kubernetes enforces on a CRD schema before it accepts it
// (structural schemas: every node typed unless int-or-string or
// preserve-unknown-fields; no properties beside additionalProperties;
// allowed keywords only; defaults valid against their own node; list-map
// keys required). Empty = structural. `raw` is the openAPIV3Schema JSON.
std::vector<std::string> CheckStructural(const web::json::value& raw);

// Validates an object (a whole custom resource) against the schema. Errors
// carry field paths ("spec.instances", "status.instances[0].port").
// Unknown fields are not errors here (the API server prunes them): see
// FindUnknownFields.
std::vector<std::string> ValidateObject(const Schema& schema, const web::json::value& object);

// Fields the schema does not declare, as the API server reports them with
// fieldValidation=Strict (kubectl's default): `unknown field "spec.foo"`.
std::vector<std::string> FindUnknownFields(const Schema& schema, const web::json::value& object);

// Removes what FindUnknownFields reports, as the API server does by default.
void PruneUnknownFields(const Schema& schema, web::json::value& object);

// Fills absent fields that declare a default, top down (a defaulted {} gets
// its own fields' defaults), and replaces null in non-nullable fields by
// their default (or drops it), as the API server does on create and read.
void ApplySchemaDefaults(const Schema& schema, web::json::value& object);

// JSON text with every object's keys sorted: equal for equal values
// whatever order their keys were written in (kubectl sorts them).
std::string CanonicalJson(const web::json::value& v);

}  // namespace pgrs::openapi
