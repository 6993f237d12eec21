#include "operator/kube/meta.h"

#include "operator/api/types.h"

#include <cstdio>
#include <ctime>

namespace pgrs::kube {

const Json* GetField(const Json& object, std::initializer_list<const char*> path) {
  const Json* cur = &object;
  for (const char* step : path) {
    if (!cur->is_object()) return nullptr;
    const auto& obj = cur->as_object();
    auto it = obj.find(step);
    if (it == obj.end()) return nullptr;
    cur = &it->second;
  }
  return cur;
}

std::string GetString(const Json& object, std::initializer_list<const char*> path) {
  const Json* v = GetField(object, path);
  if (v == nullptr) return "";
  if (v->is_string()) return v->as_string();
  if (v->is_integer()) return std::to_string(v->as_number().to_int64());
  return "";
}

std::optional<int64_t> GetInt(const Json& object, std::initializer_list<const char*> path) {
  const Json* v = GetField(object, path);
  if (v == nullptr) return std::nullopt;
  if (v->is_integer()) return v->as_number().to_int64();
  if (v->is_string()) {
    try {
      return std::stoll(v->as_string());
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string MakeKey(const std::string& ns, const std::string& name) { return ns.empty() ? name : ns + "/" + name; }

std::string KeyOf(const Json& o) { return MakeKey(NamespaceOf(o), NameOf(o)); }

void SplitKey(const std::string& key, std::string* ns, std::string* name) {
  auto slash = key.find('/');
  if (slash == std::string::npos) {
    ns->clear();
    *name = key;
  } else {
    *ns = key.substr(0, slash);
    *name = key.substr(slash + 1);
  }
}

std::string FormatRfc3339(std::chrono::system_clock::time_point t) { return api::FormatTime(t); }

std::string FormatMicroTime(std::chrono::system_clock::time_point t) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  std::snprintf(out, sizeof(out), "%s.%06lldZ", buf, static_cast<long long>(micros % 1000000));
  return out;
}

// api::ParseTime's rules: strptime and from_time_t took any year, and a
// Lease's renewTime in year 8794 overflowed the clock's nanoseconds (found by
// fuzz/lease_fuzzer).
std::optional<std::chrono::system_clock::time_point> ParseTime(const std::string& text) {
  return api::ParseTime(text);
}

std::optional<Json> ParseJson(const std::string& text) {
  std::error_code ec;
  Json v = Json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

}  // namespace pgrs::kube
