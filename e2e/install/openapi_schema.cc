#include "e2e/install/openapi_schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>

namespace pgrs::openapi {

Schema::Schema() = default;
Schema::Schema(const Schema&) = default;
Schema::Schema(Schema&&) noexcept = default;
Schema& Schema::operator=(const Schema&) = default;
Schema& Schema::operator=(Schema&&) noexcept = default;
Schema::~Schema() = default;

using web::json::value;

namespace {

// ---------------------------------------------------------------------------
// YAML to JSON

// A plain scalar under YAML 1.2's core schema.
value PlainScalar(const std::string& s) {
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return value::null();
  if (s == "true" || s == "True" || s == "TRUE") return value::boolean(true);
  if (s == "false" || s == "False" || s == "FALSE") return value::boolean(false);
  if (std::regex_match(s, kInt)) {
    std::string_view digits = s;
    if (digits.front() == '+') digits.remove_prefix(1);
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec == std::errc() && end == digits.data() + digits.size()) return value::number(n);
    return value::number(std::stod(s));
  }
  if (std::regex_match(s, kFloat)) return value::number(std::stod(s));
  return value::string(s);
}

value NodeToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return value::null();
    case YAML::NodeType::Scalar:
      // yaml-cpp tags quoted and block scalars "!" and leaves plain ones "?".
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return value::string(node.Scalar());
      return PlainScalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      value out = value::array();
      size_t i = 0;
      for (const auto& element : node) out[i++] = NodeToJson(element);
      return out;
    }
    case YAML::NodeType::Map: {
      value out = value::object(/*keep_order=*/true);
      for (const auto& entry : node) out[entry.first.as<std::string>()] = NodeToJson(entry.second);
      return out;
    }
  }
  return value::null();
}

// ---------------------------------------------------------------------------
// Schema parsing

Status ReadInt(const value& json, const char* key, std::optional<int64_t>& out) {
  if (!json.has_field(key)) return Status::Ok();
  if (!json.at(key).is_integer()) return Status::Invalid(std::string(key) + " must be an integer");
  out = json.at(key).as_number().to_int64();
  return Status::Ok();
}

Status ReadNumber(const value& json, const char* key, std::optional<double>& out) {
  if (!json.has_field(key)) return Status::Ok();
  if (!json.at(key).is_number()) return Status::Invalid(std::string(key) + " must be a number");
  out = json.at(key).as_double();
  return Status::Ok();
}

Status ReadBool(const value& json, const char* key, bool& out) {
  if (!json.has_field(key)) return Status::Ok();
  if (!json.at(key).is_boolean()) return Status::Invalid(std::string(key) + " must be a boolean");
  out = json.at(key).as_bool();
  return Status::Ok();
}

Status ReadString(const value& json, const char* key, std::string& out) {
  if (!json.has_field(key)) return Status::Ok();
  if (!json.at(key).is_string()) return Status::Invalid(std::string(key) + " must be a string");
  out = json.at(key).as_string();
  return Status::Ok();
}

Status ReadStrings(const value& json, const char* key, std::vector<std::string>& out) {
  if (!json.has_field(key)) return Status::Ok();
  if (!json.at(key).is_array()) return Status::Invalid(std::string(key) + " must be a list of strings");
  for (const value& v : json.at(key).as_array()) {
    if (!v.is_string()) return Status::Invalid(std::string(key) + " must be a list of strings");
    out.push_back(v.as_string());
  }
  return Status::Ok();
}

Result<Schema> Parse(const value& json, const std::string& where) {
  if (!json.is_object()) return Status::Invalid(where + ": a schema must be an object");
  Schema s;
  auto check = [&](Status st) { return st.WithContext(where); };
  for (Status st : {ReadString(json, "type", s.type), ReadString(json, "format", s.format),
                    ReadString(json, "description", s.description), ReadStrings(json, "required", s.required),
                    ReadNumber(json, "minimum", s.minimum), ReadNumber(json, "maximum", s.maximum),
                    ReadBool(json, "exclusiveMinimum", s.exclusiveMinimum),
                    ReadBool(json, "exclusiveMaximum", s.exclusiveMaximum),
                    ReadInt(json, "minLength", s.minLength), ReadInt(json, "maxLength", s.maxLength),
                    ReadInt(json, "minItems", s.minItems), ReadInt(json, "maxItems", s.maxItems),
                    ReadString(json, "pattern", s.pattern), ReadBool(json, "nullable", s.nullable),
                    ReadBool(json, "x-kubernetes-int-or-string", s.intOrString),
                    ReadBool(json, "x-kubernetes-preserve-unknown-fields", s.preserveUnknownFields),
                    ReadString(json, "x-kubernetes-list-type", s.listType),
                    ReadStrings(json, "x-kubernetes-list-map-keys", s.listMapKeys)}) {
    if (!st.ok()) return check(st);
  }
  if (!s.pattern.empty()) {
    try {
      s.patternRegex = std::make_shared<const std::regex>(s.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return Status::Invalid(where + ": pattern " + s.pattern + " does not compile: " + e.what());
    }
  }
  if (json.has_field("enum")) {
    if (!json.at("enum").is_array()) return Status::Invalid(where + ": enum must be a list");
    for (const value& v : json.at("enum").as_array()) s.enumValues.push_back(v);
  }
  if (json.has_field("default")) s.defaultValue = json.at("default");
  if (json.has_field("properties")) {
    if (!json.at("properties").is_object()) return Status::Invalid(where + ": properties must be a map");
    for (const auto& [name, child] : json.at("properties").as_object()) {
      Result<Schema> parsed = Parse(child, where + "." + name);
      if (!parsed.ok()) return parsed.status();
      s.properties.emplace_back(name, std::move(parsed).value());
    }
  }
  if (json.has_field("items")) {
    Result<Schema> parsed = Parse(json.at("items"), where + "[]");
    if (!parsed.ok()) return parsed.status();
    s.items = std::make_shared<Schema>(std::move(parsed).value());
  }
  if (json.has_field("additionalProperties")) {
    const value& ap = json.at("additionalProperties");
    if (ap.is_boolean()) {
      // `true` allows any value (like preserve-unknown-fields below it);
      // `false` is the same as leaving it out.
      if (ap.as_bool()) {
        s.additionalProperties = std::make_shared<Schema>();
        s.additionalProperties->preserveUnknownFields = true;
      }
    } else {
      Result<Schema> parsed = Parse(ap, where + ".*");
      if (!parsed.ok()) return parsed.status();
      s.additionalProperties = std::make_shared<Schema>(std::move(parsed).value());
    }
  }
  if (json.has_field("x-kubernetes-validations")) {
    const value& rules = json.at("x-kubernetes-validations");
    if (!rules.is_array()) return Status::Invalid(where + ": x-kubernetes-validations must be a list");
    for (const value& r : rules.as_array()) {
      if (!r.is_object()) return Status::Invalid(where + ": x-kubernetes-validations entries must be maps");
      ValidationRule rule;
      for (Status st : {ReadString(r, "rule", rule.rule), ReadString(r, "message", rule.message),
                        ReadString(r, "fieldPath", rule.fieldPath), ReadString(r, "reason", rule.reason)}) {
        if (!st.ok()) return check(st);
      }
      s.validations.push_back(std::move(rule));
    }
  }
  return s;
}

// ---------------------------------------------------------------------------
// Validation

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}
std::string Index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// The JSON type name the API server prints for a value.
std::string TypeName(const value& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

std::string FormatNumber(double d) {
  if (std::floor(d) == d && std::fabs(d) < 9.2e18) return std::to_string(static_cast<int64_t>(d));
  std::ostringstream out;
  out << d;
  return out.str();
}

bool TypeMatches(const Schema& s, const value& v) {
  if (s.intOrString) return v.is_integer() || v.is_string();
  if (s.type.empty()) return true;
  if (s.type == "object") return v.is_object();
  if (s.type == "array") return v.is_array();
  if (s.type == "string") return v.is_string();
  if (s.type == "integer") return v.is_integer();
  if (s.type == "number") return v.is_number();
  if (s.type == "boolean") return v.is_boolean();
  return false;
}

class Validator {
 public:
  void Check(const Schema& s, const value& v, const std::string& path) {
    if (v.is_null()) {
      if (s.nullable || (s.type.empty() && !s.intOrString)) return;
      Invalid(path, "\"null\"", "must be of type " + ExpectedType(s) + ": \"null\"");
      return;
    }
    if (!TypeMatches(s, v)) {
      Invalid(path, "\"" + TypeName(v) + "\"", "must be of type " + ExpectedType(s) + ": \"" + TypeName(v) + "\"");
      return;
    }
    if (!s.enumValues.empty()) {
      bool found = false;
      for (const value& e : s.enumValues) found = found || e == v;
      if (!found) {
        std::string supported;
        for (const value& e : s.enumValues) supported += (supported.empty() ? "" : ", ") + e.serialize();
        errors_.push_back(path + ": Unsupported value: " + v.serialize() + ": supported values: " + supported);
      }
    }
    if (v.is_number()) {
      const double d = v.as_double();
      if (s.minimum && (s.exclusiveMinimum ? d <= *s.minimum : d < *s.minimum)) {
        Invalid(path, v.serialize(),
                std::string("should be greater than ") + (s.exclusiveMinimum ? "" : "or equal to ") +
                    FormatNumber(*s.minimum));
      }
      if (s.maximum && (s.exclusiveMaximum ? d >= *s.maximum : d > *s.maximum)) {
        Invalid(path, v.serialize(),
                std::string("should be less than ") + (s.exclusiveMaximum ? "" : "or equal to ") +
                    FormatNumber(*s.maximum));
      }
    }
    if (v.is_string()) {
      const std::string& text = v.as_string();
      if (s.maxLength && static_cast<int64_t>(text.size()) > *s.maxLength) {
        errors_.push_back(path + ": Too long: may not be longer than " + std::to_string(*s.maxLength));
      }
      if (s.minLength && static_cast<int64_t>(text.size()) < *s.minLength) {
        Invalid(path, v.serialize(), "should be at least " + std::to_string(*s.minLength) + " chars long");
      }
      if (s.patternRegex && !std::regex_search(text, *s.patternRegex)) {
        Invalid(path, v.serialize(), "should match '" + s.pattern + "'");
      }
    }
    if (v.is_array()) {
      const auto size = static_cast<int64_t>(v.size());
      if (s.maxItems && size > *s.maxItems) {
        errors_.push_back(path + ": Too many: " + std::to_string(size) + ": must have at most " +
                          std::to_string(*s.maxItems) + " items");
      }
      if (s.minItems && size < *s.minItems) {
        Invalid(path, v.serialize(), "should have at least " + std::to_string(*s.minItems) + " items");
      }
      if (s.items) {
        for (size_t i = 0; i < v.size(); ++i) Check(*s.items, v.at(i), Index(path, i));
      }
      if (s.listType == "map" || s.listType == "set") CheckListUnique(s, v, path);
    }
    if (v.is_object()) {
      for (const std::string& name : s.required) {
        if (!v.has_field(name)) errors_.push_back(Join(path, name) + ": Required value");
      }
      for (const auto& [name, child] : v.as_object()) {
        if (const Schema* property = s.Property(name)) {
          Check(*property, child, Join(path, name));
        } else if (s.additionalProperties) {
          Check(*s.additionalProperties, child, Join(path, name));
        }
      }
    }
  }

  std::vector<std::string> TakeErrors() { return std::move(errors_); }

 private:
  static std::string ExpectedType(const Schema& s) { return s.intOrString ? "integer,string" : s.type; }

  void Invalid(const std::string& path, const std::string& shown, const std::string& problem) {
    errors_.push_back(path + ": Invalid value: " + shown + ": " + path + " in body " + problem);
  }

  void CheckListUnique(const Schema& s, const value& v, const std::string& path) {
    std::set<std::string> seen;
    for (size_t i = 0; i < v.size(); ++i) {
      std::string key;
      if (s.listType == "set") {
        key = v.at(i).serialize();
      } else {
        if (!v.at(i).is_object()) continue;
        for (const std::string& k : s.listMapKeys) {
          key += (v.at(i).has_field(k) ? v.at(i).at(k).serialize() : "null") + ",";
        }
      }
      if (!seen.insert(key).second) {
        errors_.push_back(Index(path, i) + ": Duplicate value: " + v.at(i).serialize());
      }
    }
  }

  std::vector<std::string> errors_;
};

void Unknown(const Schema& s, const value& v, const std::string& path, std::vector<std::string>& out) {
  if (s.preserveUnknownFields && s.properties.empty() && !s.additionalProperties) return;
  if (v.is_array() && s.items) {
    for (size_t i = 0; i < v.size(); ++i) Unknown(*s.items, v.at(i), Index(path, i), out);
  }
  // A value of the wrong type is a validation error, not unknown fields.
  if (!v.is_object() || (s.type != "object" && !s.preserveUnknownFields)) return;
  for (const auto& [name, child] : v.as_object()) {
    if (const Schema* property = s.Property(name)) {
      Unknown(*property, child, Join(path, name), out);
    } else if (s.additionalProperties) {
      Unknown(*s.additionalProperties, child, Join(path, name), out);
    } else if (!s.preserveUnknownFields && !(path.empty() && (name == "apiVersion" || name == "kind"))) {
      out.push_back("unknown field \"" + Join(path, name) + "\"");
    }
  }
}

// The metadata of the root is ObjectMeta, validated by the API server
// itself: neither pruned nor defaulted through the CRD schema.
bool IsRootMetadata(const std::string& path, const std::string& name) {
  return path.empty() && name == "metadata";
}

void Prune(const Schema& s, value& v, const std::string& path) {
  if (s.preserveUnknownFields && s.properties.empty() && !s.additionalProperties) return;
  if (v.is_array() && s.items) {
    for (size_t i = 0; i < v.size(); ++i) Prune(*s.items, v[i], Index(path, i));
  }
  if (!v.is_object() || (s.type != "object" && !s.preserveUnknownFields)) return;
  std::vector<std::string> drop;
  for (auto& [name, child] : v.as_object()) {
    if (IsRootMetadata(path, name)) continue;
    if (const Schema* property = s.Property(name)) {
      Prune(*property, child, Join(path, name));
    } else if (s.additionalProperties) {
      Prune(*s.additionalProperties, child, Join(path, name));
    } else if (!s.preserveUnknownFields && !(path.empty() && (name == "apiVersion" || name == "kind"))) {
      drop.push_back(name);
    }
  }
  for (const std::string& name : drop) v.erase(name);
}

void Default(const Schema& s, value& v, const std::string& path) {
  if (v.is_array() && s.items) {
    for (size_t i = 0; i < v.size(); ++i) Default(*s.items, v[i], Index(path, i));
    return;
  }
  if (!v.is_object()) return;
  for (const auto& [name, property] : s.properties) {
    if (IsRootMetadata(path, name)) continue;
    const bool absent = !v.has_field(name);
    if (!absent && v.at(name).is_null() && !property.nullable) {
      // The API server treats null in a non-nullable field as unset.
      if (property.defaultValue) {
        v[name] = *property.defaultValue;
      } else {
        v.erase(name);
        continue;
      }
    } else if (absent) {
      if (!property.defaultValue) continue;
      v[name] = *property.defaultValue;
    }
    Default(property, v[name], Join(path, name));
  }
  if (s.additionalProperties) {
    for (auto& [name, child] : v.as_object()) {
      if (s.Property(name) == nullptr) Default(*s.additionalProperties, child, Join(path, name));
    }
  }
}

// ---------------------------------------------------------------------------
// Structural checks

const std::set<std::string>& AllowedKeywords() {
  static const std::set<std::string> kAllowed = {
      "type", "format", "description", "title", "properties", "required", "items", "additionalProperties",
      "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
      "minItems", "maxItems", "minProperties", "maxProperties", "pattern", "multipleOf", "default",
      "nullable", "example", "externalDocs", "x-kubernetes-int-or-string",
      "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-list-type",
      "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-validations"};
  return kAllowed;
}

void Structural(const value& node, const std::string& path, bool root, std::vector<std::string>& out) {
  if (!node.is_object()) {
    out.push_back(path + ": must be a schema object");
    return;
  }
  for (const auto& [key, child] : node.as_object()) {
    if (!AllowedKeywords().count(key)) out.push_back(path + "." + key + ": keyword not allowed in a CRD schema");
  }
  auto flag = [&](const char* key) { return node.has_field(key) && node.at(key).is_boolean() && node.at(key).as_bool(); };
  const bool intOrString = flag("x-kubernetes-int-or-string");
  const bool preserve = flag("x-kubernetes-preserve-unknown-fields");
  const std::string type = node.has_field("type") && node.at("type").is_string() ? node.at("type").as_string() : "";
  if (type.empty() && !intOrString && !preserve) out.push_back(path + ".type: Required value: must not be empty for specified object fields");
  if (intOrString && !type.empty()) out.push_back(path + ".type: must be empty with x-kubernetes-int-or-string");
  static const std::set<std::string> kTypes = {"", "object", "array", "string", "integer", "number", "boolean"};
  if (!kTypes.count(type)) out.push_back(path + ".type: Unsupported value: \"" + type + "\"");
  if (root && type != "object") out.push_back(path + ".type: the root must be of type object");
  if (node.has_field("properties") && node.has_field("additionalProperties")) {
    out.push_back(path + ": properties and additionalProperties are mutually exclusive");
  }
  if (type == "array" && !node.has_field("items")) out.push_back(path + ".items: Required value: must be specified for arrays");
  if (node.has_field("items") && type != "array") out.push_back(path + ".items: only arrays have items");
  if ((node.has_field("properties") || node.has_field("additionalProperties")) && type != "object" && !preserve) {
    out.push_back(path + ": properties only on objects");
  }
  if (node.has_field("properties")) {
    for (const auto& [name, child] : node.at("properties").as_object()) {
      const std::string childPath = path + ".properties[" + name + "]";
      if (root && name == "metadata") {
        // Only `type: object` (and restrictions on name/generateName).
        for (const auto& [key, v] : child.as_object()) {
          if (key != "type" && key != "properties") out.push_back(childPath + "." + key + ": not allowed on metadata");
        }
        continue;
      }
      Structural(child, childPath, false, out);
    }
  }
  if (node.has_field("items")) Structural(node.at("items"), path + ".items", false, out);
  if (node.has_field("additionalProperties") && node.at("additionalProperties").is_object()) {
    Structural(node.at("additionalProperties"), path + ".additionalProperties", false, out);
  }
  if (node.has_field("x-kubernetes-list-type")) {
    const std::string listType = node.at("x-kubernetes-list-type").as_string();
    if (listType == "map") {
      const value& items = node.has_field("items") ? node.at("items") : value::null();
      if (!node.has_field("x-kubernetes-list-map-keys")) out.push_back(path + ": list-type map needs x-kubernetes-list-map-keys");
      else {
        for (const value& key : node.at("x-kubernetes-list-map-keys").as_array()) {
          bool required = false;
          if (items.is_object() && items.has_field("required")) {
            for (const value& r : items.at("required").as_array()) required = required || r == key;
          }
          if (!required) out.push_back(path + ": list-map key " + key.serialize() + " must be required");
        }
      }
    } else if (listType != "atomic" && listType != "set") {
      out.push_back(path + ".x-kubernetes-list-type: Unsupported value: \"" + listType + "\"");
    }
  }
  if (node.has_field("x-kubernetes-validations")) {
    static const std::set<std::string> kReasons = {"", "FieldValueInvalid", "FieldValueForbidden",
                                                  "FieldValueRequired", "FieldValueDuplicate"};
    for (const value& rule : node.at("x-kubernetes-validations").as_array()) {
      if (!rule.has_field("rule") || !rule.at("rule").is_string() || rule.at("rule").as_string().empty()) {
        out.push_back(path + ".x-kubernetes-validations: rule: Required value");
      }
      if (rule.has_field("reason") && !kReasons.count(rule.at("reason").as_string())) {
        out.push_back(path + ".x-kubernetes-validations: reason: Unsupported value: " + rule.at("reason").serialize());
      }
      if (rule.has_field("fieldPath") && rule.at("fieldPath").as_string().rfind('.', 0) != 0) {
        out.push_back(path + ".x-kubernetes-validations: fieldPath must start with '.'");
      }
    }
  }
  // A default must itself be valid and survive pruning, as the API server
  // checks when the CRD is created.
  if (node.has_field("default")) {
    Result<Schema> schema = ParseSchema(node);
    if (!schema.ok()) {
      out.push_back(path + ": " + schema.status().message());
    } else {
      value defaulted = node.at("default");
      ApplySchemaDefaults(*schema, defaulted);
      for (const std::string& e : ValidateObject(*schema, defaulted)) out.push_back(path + ".default: " + e);
      for (const std::string& e : FindUnknownFields(*schema, defaulted)) out.push_back(path + ".default: " + e);
    }
  }
}

}  // namespace

const Schema* Schema::Property(const std::string& name) const {
  for (const auto& [key, schema] : properties) {
    if (key == name) return &schema;
  }
  return nullptr;
}

const CrdVersion& Crd::StorageVersion() const {
  for (const CrdVersion& v : versions) {
    if (v.storage) return v;
  }
  return versions.front();
}

Result<std::vector<value>> YamlToJson(const std::string& yamlText) {
  std::vector<value> out;
  try {
    for (const YAML::Node& doc : YAML::LoadAll(yamlText)) {
      if (doc.IsNull()) continue;
      out.push_back(NodeToJson(doc));
    }
  } catch (const YAML::Exception& e) {
    return Status::Invalid(std::string("not valid YAML: ") + e.what());
  }
  return out;
}

Result<Schema> ParseSchema(const value& json) { return Parse(json, "openAPIV3Schema"); }

Result<Crd> LoadCrd(const std::string& yamlText) {
  Result<std::vector<value>> docs = YamlToJson(yamlText);
  if (!docs.ok()) return docs.status();
  if (docs->size() != 1) return Status::Invalid("a CRD file must hold exactly one document");
  const value& doc = docs->front();
  auto str = [](const value& v, const char* key) {
    return v.is_object() && v.has_field(key) && v.at(key).is_string() ? v.at(key).as_string() : std::string();
  };
  if (str(doc, "apiVersion") != "apiextensions.k8s.io/v1" || str(doc, "kind") != "CustomResourceDefinition") {
    return Status::Invalid("not an apiextensions.k8s.io/v1 CustomResourceDefinition");
  }
  if (!doc.has_field("spec") || !doc.at("spec").is_object()) return Status::Invalid("spec: Required value");
  const value& spec = doc.at("spec");
  Crd crd;
  crd.group = str(spec, "group");
  crd.scope = str(spec, "scope");
  if (spec.has_field("names")) {
    const value& names = spec.at("names");
    crd.kind = str(names, "kind");
    crd.plural = str(names, "plural");
    crd.singular = str(names, "singular");
    crd.listKind = str(names, "listKind");
    if (Status st = ReadStrings(names, "shortNames", crd.shortNames); !st.ok()) return st;
  }
  if (!spec.has_field("versions") || !spec.at("versions").is_array() || spec.at("versions").size() == 0) {
    return Status::Invalid("spec.versions: Required value");
  }
  int storageVersions = 0;
  for (const value& v : spec.at("versions").as_array()) {
    CrdVersion version;
    version.name = str(v, "name");
    if (Status st = ReadBool(v, "served", version.served); !st.ok()) return st;
    if (Status st = ReadBool(v, "storage", version.storage); !st.ok()) return st;
    storageVersions += version.storage ? 1 : 0;
    if (!v.has_field("schema") || !v.at("schema").has_field("openAPIV3Schema")) {
      return Status::Invalid("spec.versions[" + version.name + "].schema.openAPIV3Schema: Required value");
    }
    version.rawSchema = v.at("schema").at("openAPIV3Schema");
    Result<Schema> schema = ParseSchema(version.rawSchema);
    if (!schema.ok()) return schema.status();
    version.schema = std::move(schema).value();
    version.subresources = v.has_field("subresources") ? v.at("subresources") : value::null();
    version.printerColumns =
        v.has_field("additionalPrinterColumns") ? v.at("additionalPrinterColumns") : value::null();
    crd.versions.push_back(std::move(version));
  }
  if (storageVersions != 1) return Status::Invalid("spec.versions: exactly one version must be the storage version");
  return crd;
}

Result<Schema> LoadCrdSchema(const std::string& yamlText) {
  Result<Crd> crd = LoadCrd(yamlText);
  if (!crd.ok()) return crd.status();
  return crd->StorageVersion().schema;
}

std::vector<std::string> CheckStructural(const value& raw) {
  std::vector<std::string> out;
  Structural(raw, "openAPIV3Schema", /*root=*/true, out);
  return out;
}

std::vector<std::string> ValidateObject(const Schema& schema, const value& object) {
  Validator validator;
  if (!object.is_object()) {
    validator.Check(schema, object, "<root>");
    return validator.TakeErrors();
  }
  // The root's metadata is the API server's own ObjectMeta; only the rest
  // goes through the CRD schema.
  Schema withoutMetadata = schema;
  std::erase_if(withoutMetadata.properties, [](const auto& p) { return p.first == "metadata"; });
  std::erase(withoutMetadata.required, "metadata");
  value rest = object;
  if (rest.has_field("metadata")) rest.erase("metadata");
  validator.Check(withoutMetadata, rest, "");
  return validator.TakeErrors();
}

std::vector<std::string> FindUnknownFields(const Schema& schema, const value& object) {
  std::vector<std::string> out;
  value rest = object;
  if (rest.is_object() && rest.has_field("metadata")) rest.erase("metadata");
  Unknown(schema, rest, "", out);
  return out;
}

void PruneUnknownFields(const Schema& schema, value& object) { Prune(schema, object, ""); }

void ApplySchemaDefaults(const Schema& schema, value& object) { Default(schema, object, ""); }

std::string CanonicalJson(const value& v) {
  if (v.is_object()) {
    std::vector<std::string> keys;
    for (const auto& [key, child] : v.as_object()) keys.push_back(key);
    std::sort(keys.begin(), keys.end());
    std::string out = "{";
    for (const std::string& key : keys) {
      out += (out.size() > 1 ? "," : "") + value::string(key).serialize() + ":" + CanonicalJson(v.at(key));
    }
    return out + "}";
  }
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + CanonicalJson(v.at(i));
    return out + "]";
  }
  return v.serialize();
}

}  // namespace pgrs::openapi
