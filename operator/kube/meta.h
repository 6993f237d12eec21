// Small helpers over Kubernetes objects held as JSON: field access that
// never throws, object keys, and the API's time formats.
#pragma once

#include <cpprest/json.h>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>

namespace pgrs::kube {

using Json = web::json::value;

// The string at a path of object fields ("metadata", "name"); "" when any
// step is missing or not of the right type.
std::string GetString(const Json& object, std::initializer_list<const char*> path);
std::optional<int64_t> GetInt(const Json& object, std::initializer_list<const char*> path);
// Integers that the API sometimes writes as strings (resourceVersion).
const Json* GetField(const Json& object, std::initializer_list<const char*> path);

inline std::string NameOf(const Json& o) { return GetString(o, {"metadata", "name"}); }
inline std::string NamespaceOf(const Json& o) { return GetString(o, {"metadata", "namespace"}); }
inline std::string ResourceVersionOf(const Json& o) { return GetString(o, {"metadata", "resourceVersion"}); }
inline std::string UidOf(const Json& o) { return GetString(o, {"metadata", "uid"}); }
// "namespace/name", or "name" for cluster-scoped objects: the work-queue key.
std::string KeyOf(const Json& o);
std::string MakeKey(const std::string& ns, const std::string& name);
// Splits a key back into namespace and name.
void SplitKey(const std::string& key, std::string* ns, std::string* name);

// Times as the API writes them.
std::string FormatRfc3339(std::chrono::system_clock::time_point t);       // 2026-01-02T03:04:05Z
std::string FormatMicroTime(std::chrono::system_clock::time_point t);     // 2026-01-02T03:04:05.000000Z
std::optional<std::chrono::system_clock::time_point> ParseTime(const std::string& text);  // either form

// Parses JSON text; nullopt when it is not JSON.
std::optional<Json> ParseJson(const std::string& text);

}  // namespace pgrs::kube
