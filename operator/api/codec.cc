// Conversions of PostgresReplicaSet to and from text.
//
// Decoding reads YAML (and therefore JSON) with yaml-cpp and walks the node
// tree against the schema, so that every problem is reported with its field
// path instead of stopping at the first. Scalars are typed the way YAML 1.2's
// core schema (and JSON) type them: a quoted "3" is a string, a plain 3 an
// integer. Encoding builds a web::json value; YAML output is produced from
// that same value, so both formats always carry the same fields.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cpprest/json.h>
#include <functional>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>

#include "operator/api/types.h"

namespace pgrs::api {

namespace {

// ---------------------------------------------------------------------------
// Scalar typing

enum class ScalarKind { kNull, kBool, kInt, kFloat, kString };

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string_view StripSign(std::string_view s) {
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  return s;
}

// [-+]?[0-9]+ — the decimal integers of YAML 1.2's core schema.
bool IsIntText(std::string_view s) { return AllDigits(StripSign(s)); }

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloatText(std::string_view s) {
  s = StripSign(s);
  size_t i = 0;
  size_t mantissaDigits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++mantissaDigits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++mantissaDigits;
  }
  if (mantissaDigits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    return IsIntText(s.substr(i));
  }
  return i == s.size();
}

bool IsSpecialFloatText(std::string_view s) {
  std::string_view unsigned_ = StripSign(s);
  for (std::string_view inf : {".inf", ".Inf", ".INF"}) {
    if (unsigned_ == inf) return true;
  }
  for (std::string_view nan : {".nan", ".NaN", ".NAN"}) {
    if (s == nan) return true;
  }
  return false;
}

bool IsBoolText(std::string_view s) {
  for (std::string_view b : {"true", "True", "TRUE", "false", "False", "FALSE"}) {
    if (s == b) return true;
  }
  return false;
}

bool IsNullText(std::string_view s) {
  for (std::string_view n : {"", "~", "null", "Null", "NULL"}) {
    if (s == n) return true;
  }
  return false;
}

// What a plain (unquoted) scalar means under YAML 1.2's core schema.
ScalarKind ResolvePlain(std::string_view s) {
  if (IsNullText(s)) return ScalarKind::kNull;
  if (IsBoolText(s)) return ScalarKind::kBool;
  if (IsIntText(s)) return ScalarKind::kInt;
  if (IsFloatText(s) || IsSpecialFloatText(s)) return ScalarKind::kFloat;
  return ScalarKind::kString;
}

ScalarKind KindOf(const YAML::Node& node) {
  if (node.IsNull()) return ScalarKind::kNull;
  // yaml-cpp tags quoted and block scalars "!" and leaves plain ones "?".
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return ScalarKind::kString;
  return ResolvePlain(node.Scalar());
}

// True when a string written plain would be read back as something else,
// by us or by a YAML 1.1 reader (kubectl's): 1.1 also reads yes/no/on/off
// as booleans and 1_000, 0x1f, 0b101, 1:30 or 2024-01-01T10:00:00Z as
// numbers or dates. Rather than carry 1.1's grammar, anything that starts
// like a number and uses only characters those forms use is quoted; "1Gi",
// "256MB" and "0/5000060" stay plain for people to read.
bool NeedsQuotes(std::string_view s) {
  if (ResolvePlain(s) != ScalarKind::kString) return true;
  for (std::string_view word : {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On",
                                "ON", "off", "Off", "OFF"}) {
    if (s == word) return true;
  }
  std::string_view rest = StripSign(s);
  if (!rest.empty() && rest.front() == '.') rest.remove_prefix(1);
  if (rest.empty() || rest.front() < '0' || rest.front() > '9') return false;
  constexpr std::string_view kNumberish = "0123456789_:.+- abcdefABCDEFxXoOtTzZ";
  return s.find_first_not_of(kNumberish) == std::string_view::npos;
}

// ---------------------------------------------------------------------------
// Decoding

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Reads one field's value; receives the value node and the field's path.
using FieldReader = std::function<void(const YAML::Node&, const std::string&)>;
struct Field {
  const char* name;
  FieldReader read;
};

// Walks a node tree against the schema, collecting every error. A null value
// (`field:`, `field: null`) means "not set", as in Kubernetes.
class Decoder {
 public:
  void Fail(const std::string& path, std::string message) {
    errors_.push_back(FieldError{path.empty() ? "<document>" : path, std::move(message)});
  }
  const std::vector<FieldError>& errors() const { return errors_; }
  std::vector<FieldError> TakeErrors() { return std::move(errors_); }

  // A map whose keys must all be among `fields`.
  void Object(const YAML::Node& node, const std::string& path, std::initializer_list<Field> fields) {
    ForEachKey(node, path, [&](const std::string& key, const YAML::Node& value) {
      for (const Field& field : fields) {
        if (key == field.name) {
          field.read(value, Join(path, key));
          return;
        }
      }
      Fail(Join(path, key), "unknown field");
    });
  }

  bool Read(const YAML::Node& node, const std::string& path, std::string& out) {
    if (!IsScalar(node, path, "a string")) return false;
    if (KindOf(node) != ScalarKind::kString) {
      Fail(path, "must be a string");
      return false;
    }
    out = node.Scalar();
    return true;
  }

  bool Read(const YAML::Node& node, const std::string& path, bool& out) {
    if (!IsScalar(node, path, "a boolean")) return false;
    if (KindOf(node) != ScalarKind::kBool) {
      Fail(path, "must be a boolean (true or false)");
      return false;
    }
    out = node.Scalar().front() != 'f' && node.Scalar().front() != 'F';
    return true;
  }

  bool Read(const YAML::Node& node, const std::string& path, int64_t& out) {
    if (!IsScalar(node, path, "an integer")) return false;
    if (KindOf(node) != ScalarKind::kInt) {
      Fail(path, "must be an integer");
      return false;
    }
    std::string_view text = node.Scalar();
    if (text.front() == '+') text.remove_prefix(1);  // from_chars takes no '+'
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc() || end != text.data() + text.size()) {
      Fail(path, "must be an integer that fits in 64 bits");
      return false;
    }
    return true;
  }

  bool Read(const YAML::Node& node, const std::string& path, int& out) {
    int64_t wide = 0;
    if (!Read(node, path, wide)) return false;
    if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
      Fail(path, "must be an integer that fits in 32 bits");
      return false;
    }
    out = static_cast<int>(wide);
    return true;
  }

  bool Read(const YAML::Node& node, const std::string& path, double& out) {
    if (!IsScalar(node, path, "a number")) return false;
    const ScalarKind kind = KindOf(node);
    std::string_view text = node.Scalar();
    if ((kind != ScalarKind::kInt && kind != ScalarKind::kFloat) || IsSpecialFloatText(text)) {
      Fail(path, "must be a finite number");
      return false;
    }
    if (text.front() == '+') text.remove_prefix(1);
    // from_chars, unlike strtod, does not depend on the C locale.
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(out)) {
      Fail(path, "must be a finite number");
      return false;
    }
    return true;
  }

  template <typename T>
  void Read(const YAML::Node& node, const std::string& path, std::optional<T>& out) {
    if (node.IsNull()) return;
    T value{};
    if (Read(node, path, value)) out = value;
  }

  // A scalar of any type kept as the text the user wrote ("256MB", 100, on).
  bool ReadText(const YAML::Node& node, const std::string& path, std::string& out,
                const char* expected) {
    if (node.IsNull() || !node.IsScalar()) {
      Fail(path, std::string("must be ") + expected);
      return false;
    }
    out = node.Scalar();
    return true;
  }

  // A map of strings to strings. With `anyScalar`, values may also be
  // numbers or booleans, kept as written.
  void StringMap(const YAML::Node& node, const std::string& path,
                 std::map<std::string, std::string>& out, bool anyScalar) {
    ForEachKey(node, path, [&](const std::string& key, const YAML::Node& value) {
      std::string text;
      const bool ok = anyScalar ? ReadText(value, Join(path, key), text, "a string, number or boolean")
                                : ReadString(value, Join(path, key), text);
      if (ok) out[key] = std::move(text);
    });
  }

  template <typename T, typename ReadElement>
  void List(const YAML::Node& node, const std::string& path, std::vector<T>& out,
            ReadElement readElement) {
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      Fail(path, "must be a list");
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      T element{};
      if (readElement(node[i], Index(path, i), element)) out.push_back(std::move(element));
    }
  }

  // A string that must be present: null is an error, not "unset".
  bool ReadString(const YAML::Node& node, const std::string& path, std::string& out) {
    if (node.IsNull()) {
      Fail(path, "must be a string");
      return false;
    }
    return Read(node, path, out);
  }

 private:
  // False (silently) for null, false with an error for lists and maps.
  bool IsScalar(const YAML::Node& node, const std::string& path, const char* expected) {
    if (node.IsNull()) return false;
    if (!node.IsScalar()) {
      Fail(path, std::string("must be ") + expected);
      return false;
    }
    return true;
  }

  void ForEachKey(const YAML::Node& node, const std::string& path,
                  const std::function<void(const std::string&, const YAML::Node&)>& visit) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      Fail(path, "must be a map");
      return;
    }
    std::set<std::string> seen;
    // Entries are copied: yaml-cpp's iterators hand out proxies, and a
    // reference to `it->first` would outlive its temporary.
    for (const auto& entry : node) {
      const YAML::Node key = entry.first;
      const YAML::Node value = entry.second;
      if (!key.IsScalar()) {
        Fail(path, "field names must be strings");
        continue;
      }
      const std::string name = key.Scalar();
      // yaml-cpp keeps both entries of a repeated key; which one wins would
      // be an accident of the parser, so a repeat is an error.
      if (!seen.insert(name).second) {
        Fail(Join(path, name), "is set more than once");
        continue;
      }
      visit(name, value);
    }
  }

  std::vector<FieldError> errors_;
};

void DecodeMetadata(Decoder& d, const YAML::Node& node, const std::string& path, ObjectMeta& out) {
  d.Object(node, path,
           {
               {"name", [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.name); }},
               {"namespace", [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.namespace_); }},
               {"uid", [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.uid); }},
               {"resourceVersion",
                [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.resourceVersion); }},
               {"generation", [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.generation); }},
               {"creationTimestamp",
                [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.creationTimestamp); }},
               {"deletionTimestamp",
                [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.deletionTimestamp); }},
               {"labels", [&](const YAML::Node& v, const std::string& p) { d.StringMap(v, p, out.labels, false); }},
               {"annotations",
                [&](const YAML::Node& v, const std::string& p) { d.StringMap(v, p, out.annotations, false); }},
               // The API server adds these to every object it returns. pgrs
               // does not model them, but they are not user mistakes either.
               {"managedFields", [](const YAML::Node&, const std::string&) {}},
               {"finalizers", [](const YAML::Node&, const std::string&) {}},
               {"ownerReferences", [](const YAML::Node&, const std::string&) {}},
               {"selfLink", [](const YAML::Node&, const std::string&) {}},
               {"generateName", [](const YAML::Node&, const std::string&) {}},
               {"deletionGracePeriodSeconds", [](const YAML::Node&, const std::string&) {}},
           });
}

void DecodeS3(Decoder& d, const YAML::Node& node, const std::string& path, S3RepositorySpec& s3) {
  using N = const YAML::Node&;
  using P = const std::string&;
  d.Object(node, path,
           {
               {"endpoint", [&](N v, P p) { d.Read(v, p, s3.endpoint); }},
               {"bucket", [&](N v, P p) { d.Read(v, p, s3.bucket); }},
               {"region", [&](N v, P p) { d.Read(v, p, s3.region); }},
               {"uriStyle", [&](N v, P p) { d.Read(v, p, s3.uriStyle); }},
               {"path", [&](N v, P p) { d.Read(v, p, s3.path); }},
               {"credentialsFile", [&](N v, P p) { d.Read(v, p, s3.credentialsFile); }},
               {"caFile", [&](N v, P p) { d.Read(v, p, s3.caFile); }},
               {"credentialsSecret", [&](N v, P p) { d.Read(v, p, s3.credentialsSecret); }},
               {"caSecret", [&](N v, P p) { d.Read(v, p, s3.caSecret); }},
               {"verifyTLS", [&](N v, P p) { d.Read(v, p, s3.verifyTLS); }},
           });
}

// spec.backup.schedule and status.backup.lastScheduled: one text per backup type.
void DecodeScheduleFields(Decoder& d, const YAML::Node& node, const std::string& path, std::string& full,
                          std::string& differential, std::string& incremental) {
  using N = const YAML::Node&;
  using P = const std::string&;
  d.Object(node, path,
           {
               {"full", [&](N v, P p) { d.Read(v, p, full); }},
               {"differential", [&](N v, P p) { d.Read(v, p, differential); }},
               {"incremental", [&](N v, P p) { d.Read(v, p, incremental); }},
           });
}

// spec.backup.repository and spec.bootstrap.recovery.repository (which
// alone has `encryption`: pass it).
void DecodeRepository(Decoder& d, const YAML::Node& node, const std::string& path, BackupRepositorySpec& out,
                      std::optional<bool>* encryption = nullptr) {
  const Field repositoryPath{"path", [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.path); }};
  const Field volumeClaim{"volumeClaim",
                          [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, out.volumeClaim); }};
  const Field s3{"s3", [&](const YAML::Node& v, const std::string& p) { DecodeS3(d, v, p, out.s3.emplace()); }};
  if (encryption == nullptr) {
    d.Object(node, path, {repositoryPath, volumeClaim, s3});
    return;
  }
  d.Object(node, path,
           {repositoryPath, volumeClaim, s3,
            {"encryption", [&](const YAML::Node& v, const std::string& p) { d.Read(v, p, *encryption); }}});
}

void DecodeSpec(Decoder& d, const YAML::Node& node, const std::string& path, ReplicaSetSpec& out) {
  using N = const YAML::Node&;
  using P = const std::string&;
  d.Object(node, path,
           {
               {"instances", [&](N v, P p) { d.Read(v, p, out.instances); }},
               {"postgres",
                [&](N v, P p) {
                  PostgresSpec& pg = out.postgres;
                  d.Object(v, p,
                           {
                               {"version", [&](N v2, P p2) { d.Read(v2, p2, pg.version); }},
                               {"parameters", [&](N v2, P p2) { d.StringMap(v2, p2, pg.parameters, true); }},
                               {"pgHBA",
                                [&](N v2, P p2) {
                                  d.List(v2, p2, pg.pgHBA, [&](N e, P pe, std::string& line) {
                                    return d.ReadString(e, pe, line);
                                  });
                                }},
                               {"dataChecksums", [&](N v2, P p2) { d.Read(v2, p2, pg.dataChecksums); }},
                           });
                }},
               {"replication",
                [&](N v, P p) {
                  ReplicationSpec& r = out.replication;
                  d.Object(v, p,
                           {
                               {"mode", [&](N v2, P p2) { d.Read(v2, p2, r.mode); }},
                               {"syncReplicas", [&](N v2, P p2) { d.Read(v2, p2, r.syncReplicas); }},
                               {"slots", [&](N v2, P p2) { d.Read(v2, p2, r.slots); }},
                               {"dataDurability", [&](N v2, P p2) { d.Read(v2, p2, r.dataDurability); }},
                               // -1 may be written as a bare number.
                               {"maxSlotWalKeepSize",
                                [&](N v2, P p2) {
                                  if (!v2.IsNull()) d.ReadText(v2, p2, r.maxSlotWalKeepSize, "a size such as 512MB, or -1");
                                }},
                           });
                }},
               {"failover",
                [&](N v, P p) {
                  FailoverSpec& f = out.failover;
                  d.Object(v, p,
                           {
                               {"enabled", [&](N v2, P p2) { d.Read(v2, p2, f.enabled); }},
                               {"delaySeconds", [&](N v2, P p2) { d.Read(v2, p2, f.delaySeconds); }},
                               {"maxLagBytes", [&](N v2, P p2) { d.Read(v2, p2, f.maxLagBytes); }},
                               {"detectionSeconds", [&](N v2, P p2) { d.Read(v2, p2, f.detectionSeconds); }},
                               {"leaseDurationSeconds",
                                [&](N v2, P p2) { d.Read(v2, p2, f.leaseDurationSeconds); }},
                               {"renewDeadlineSeconds",
                                [&](N v2, P p2) { d.Read(v2, p2, f.renewDeadlineSeconds); }},
                               {"retryPeriodSeconds", [&](N v2, P p2) { d.Read(v2, p2, f.retryPeriodSeconds); }},
                           });
                }},
               {"primary", [&](N v, P p) { d.Read(v, p, out.primary); }},
               {"tls",
                [&](N v, P p) {
                  TlsSpec& t = out.tls;
                  d.Object(v, p,
                           {
                               {"enabled", [&](N v2, P p2) { d.Read(v2, p2, t.enabled); }},
                               {"certificateValidity",
                                [&](N v2, P p2) { d.Read(v2, p2, t.certificateValidity); }},
                           });
                }},
               {"storage",
                [&](N v, P p) {
                  StorageSpec& s = out.storage;
                  d.Object(v, p,
                           {
                               // A quantity may be written as a bare number
                               // (size: 1024), as in Kubernetes.
                               {"size",
                                [&](N v2, P p2) {
                                  if (!v2.IsNull()) d.ReadText(v2, p2, s.size, "a quantity such as 1Gi");
                                }},
                               {"storageClassName", [&](N v2, P p2) { d.Read(v2, p2, s.storageClassName); }},
                           });
                }},
               {"local",
                [&](N v, P p) {
                  d.Object(v, p, {{"basePort", [&](N v2, P p2) { d.Read(v2, p2, out.local.basePort); }}});
                }},
               {"backup",
                [&](N v, P p) {
                  BackupSpec& b = out.backup.emplace();
                  d.Object(v, p,
                           {
                               {"repository", [&](N v2, P p2) { DecodeRepository(d, v2, p2, b.repository); }},
                               {"fromStandby", [&](N v2, P p2) { d.Read(v2, p2, b.fromStandby); }},
                               {"bootstrapStandbys", [&](N v2, P p2) { d.Read(v2, p2, b.bootstrapStandbys); }},
                               {"encryption", [&](N v2, P p2) { d.Read(v2, p2, b.encryption); }},
                               {"retention",
                                [&](N v2, P p2) {
                                  d.Object(v2, p2, {{"full", [&](N v3, P p3) { d.Read(v3, p3, b.retention.full); }}});
                                }},
                               {"schedule",
                                [&](N v2, P p2) {
                                  DecodeScheduleFields(d, v2, p2, b.schedule.full, b.schedule.differential,
                                                       b.schedule.incremental);
                                }},
                           });
                }},
               {"bootstrap",
                [&](N v, P p) {
                  BootstrapSpec& b = out.bootstrap.emplace();
                  d.Object(v, p,
                           {
                               {"recovery",
                                [&](N v2, P p2) {
                                  RecoverySpec& r = b.recovery.emplace();
                                  d.Object(v2, p2,
                                           {
                                               {"source", [&](N v3, P p3) { d.Read(v3, p3, r.source); }},
                                               {"repository",
                                                [&](N v3, P p3) {
                                                  DecodeRepository(d, v3, p3, r.repository, &r.repository.encryption);
                                                }},
                                               {"encryptionPassphraseFile",
                                                [&](N v3, P p3) { d.Read(v3, p3, r.encryptionPassphraseFile); }},
                                               {"encryptionPassphraseSecret",
                                                [&](N v3, P p3) { d.Read(v3, p3, r.encryptionPassphraseSecret); }},
                                               {"target",
                                                [&](N v3, P p3) {
                                                  RecoveryTargetSpec& t = r.target.emplace();
                                                  d.Object(v3, p3,
                                                           {
                                                               {"time", [&](N v4, P p4) { d.Read(v4, p4, t.time); }},
                                                               {"lsn", [&](N v4, P p4) { d.Read(v4, p4, t.lsn); }},
                                                               {"name", [&](N v4, P p4) { d.Read(v4, p4, t.name); }},
                                                               {"immediate",
                                                                [&](N v4, P p4) { d.Read(v4, p4, t.immediate); }},
                                                           });
                                                }},
                                           });
                                }},
                           });
                }},
           });
}

bool DecodeCondition(Decoder& d, const YAML::Node& node, const std::string& path, Condition& out) {
  using N = const YAML::Node&;
  using P = const std::string&;
  const size_t before = d.errors().size();
  d.Object(node, path,
           {
               {"type", [&](N v, P p) { d.Read(v, p, out.type); }},
               {"status", [&](N v, P p) { d.Read(v, p, out.status); }},
               {"reason", [&](N v, P p) { d.Read(v, p, out.reason); }},
               {"message", [&](N v, P p) { d.Read(v, p, out.message); }},
               {"lastTransitionTime", [&](N v, P p) { d.Read(v, p, out.lastTransitionTime); }},
               {"observedGeneration", [&](N v, P p) { d.Read(v, p, out.observedGeneration); }},
           });
  return d.errors().size() == before;
}

bool DecodeInstanceStatus(Decoder& d, const YAML::Node& node, const std::string& path,
                          InstanceStatus& out) {
  using N = const YAML::Node&;
  using P = const std::string&;
  const size_t before = d.errors().size();
  d.Object(node, path,
           {
               {"name", [&](N v, P p) { d.Read(v, p, out.name); }},
               {"role", [&](N v, P p) { d.Read(v, p, out.role); }},
               {"state", [&](N v, P p) { d.Read(v, p, out.state); }},
               {"host", [&](N v, P p) { d.Read(v, p, out.host); }},
               {"port", [&](N v, P p) { d.Read(v, p, out.port); }},
               {"lsn", [&](N v, P p) { d.Read(v, p, out.lsn); }},
               {"lagBytes", [&](N v, P p) { d.Read(v, p, out.lagBytes); }},
               {"lagSeconds", [&](N v, P p) { d.Read(v, p, out.lagSeconds); }},
               {"syncState", [&](N v, P p) { d.Read(v, p, out.syncState); }},
               {"timeline", [&](N v, P p) { d.Read(v, p, out.timeline); }},
               {"message", [&](N v, P p) { d.Read(v, p, out.message); }},
               {"fenced", [&](N v, P p) { d.Read(v, p, out.fenced); }},
           });
  return d.errors().size() == before;
}

bool DecodeFailoverRecord(Decoder& d, const YAML::Node& node, const std::string& path, FailoverRecord& out) {
  using N = const YAML::Node&;
  using P = const std::string&;
  const size_t before = d.errors().size();
  d.Object(node, path,
           {
               {"time", [&](N v, P p) { d.Read(v, p, out.time); }},
               {"from", [&](N v, P p) { d.Read(v, p, out.from); }},
               {"to", [&](N v, P p) { d.Read(v, p, out.to); }},
               {"reason", [&](N v, P p) { d.Read(v, p, out.reason); }},
               {"unavailableSeconds", [&](N v, P p) { d.Read(v, p, out.unavailableSeconds); }},
               {"timeline", [&](N v, P p) { d.Read(v, p, out.timeline); }},
           });
  return d.errors().size() == before;
}

bool DecodeBackupRecord(Decoder& d, const YAML::Node& node, const std::string& path, BackupRecord& out) {
  using N = const YAML::Node&;
  using P = const std::string&;
  const size_t before = d.errors().size();
  d.Object(node, path,
           {
               {"label", [&](N v, P p) { d.Read(v, p, out.label); }},
               {"type", [&](N v, P p) { d.Read(v, p, out.type); }},
               {"startTime", [&](N v, P p) { d.Read(v, p, out.startTime); }},
               {"stopTime", [&](N v, P p) { d.Read(v, p, out.stopTime); }},
               {"startLsn", [&](N v, P p) { d.Read(v, p, out.startLsn); }},
               {"stopLsn", [&](N v, P p) { d.Read(v, p, out.stopLsn); }},
               {"databaseSize", [&](N v, P p) { d.Read(v, p, out.databaseSize); }},
               {"repositorySize", [&](N v, P p) { d.Read(v, p, out.repositorySize); }},
           });
  return d.errors().size() == before;
}

void DecodeScheduledRun(Decoder& d, const YAML::Node& node, const std::string& path, ScheduledBackupRun& out) {
  using N = const YAML::Node&;
  using P = const std::string&;
  d.Object(node, path,
           {
               {"type", [&](N v, P p) { d.Read(v, p, out.type); }},
               {"scheduledTime", [&](N v, P p) { d.Read(v, p, out.scheduledTime); }},
               {"startTime", [&](N v, P p) { d.Read(v, p, out.startTime); }},
               {"stopTime", [&](N v, P p) { d.Read(v, p, out.stopTime); }},
               {"outcome", [&](N v, P p) { d.Read(v, p, out.outcome); }},
               {"label", [&](N v, P p) { d.Read(v, p, out.label); }},
               {"message", [&](N v, P p) { d.Read(v, p, out.message); }},
           });
}

void DecodeBackupStatus(Decoder& d, const YAML::Node& node, const std::string& path, BackupStatus& out) {
  using N = const YAML::Node&;
  using P = const std::string&;
  d.Object(node, path,
           {
               {"backups",
                [&](N v, P p) {
                  d.List(v, p, out.backups, [&](N e, P pe, BackupRecord& b) { return DecodeBackupRecord(d, e, pe, b); });
                }},
               {"firstRecoverableTime", [&](N v, P p) { d.Read(v, p, out.firstRecoverableTime); }},
               {"lastRecoverableTime", [&](N v, P p) { d.Read(v, p, out.lastRecoverableTime); }},
               {"lastArchivedWal", [&](N v, P p) { d.Read(v, p, out.lastArchivedWal); }},
               {"lastArchivedTime", [&](N v, P p) { d.Read(v, p, out.lastArchivedTime); }},
               {"lastFailedWal", [&](N v, P p) { d.Read(v, p, out.lastFailedWal); }},
               {"lastFailedTime", [&](N v, P p) { d.Read(v, p, out.lastFailedTime); }},
               {"archiveFailedCount", [&](N v, P p) { d.Read(v, p, out.archiveFailedCount); }},
               {"archivingFailing", [&](N v, P p) { d.Read(v, p, out.archivingFailing); }},
               {"repositoryError", [&](N v, P p) { d.Read(v, p, out.repositoryError); }},
               {"repositoryCheckedTime", [&](N v, P p) { d.Read(v, p, out.repositoryCheckedTime); }},
               {"lastScheduled",
                [&](N v, P p) {
                  DecodeScheduleFields(d, v, p, out.lastScheduled.full, out.lastScheduled.differential,
                                       out.lastScheduled.incremental);
                }},
               {"lastScheduledBackup", [&](N v, P p) { DecodeScheduledRun(d, v, p, out.lastScheduledBackup.emplace()); }},
           });
}

void DecodeStatus(Decoder& d, const YAML::Node& node, const std::string& path, ReplicaSetStatus& out) {
  using N = const YAML::Node&;
  using P = const std::string&;
  d.Object(node, path,
           {
               {"phase", [&](N v, P p) { d.Read(v, p, out.phase); }},
               {"currentPrimary", [&](N v, P p) { d.Read(v, p, out.currentPrimary); }},
               {"targetPrimary", [&](N v, P p) { d.Read(v, p, out.targetPrimary); }},
               {"promotionReason", [&](N v, P p) { d.Read(v, p, out.promotionReason); }},
               {"promotionStarted", [&](N v, P p) { d.Read(v, p, out.promotionStarted); }},
               {"primaryLostSince", [&](N v, P p) { d.Read(v, p, out.primaryLostSince); }},
               {"timeline", [&](N v, P p) { d.Read(v, p, out.timeline); }},
               {"readyInstances", [&](N v, P p) { d.Read(v, p, out.readyInstances); }},
               {"instances",
                [&](N v, P p) {
                  d.List(v, p, out.instances,
                         [&](N e, P pe, InstanceStatus& i) { return DecodeInstanceStatus(d, e, pe, i); });
                }},
               {"connection",
                [&](N v, P p) {
                  d.Object(v, p,
                           {
                               {"readWrite", [&](N v2, P p2) { d.Read(v2, p2, out.connection.readWrite); }},
                               {"readOnly", [&](N v2, P p2) { d.Read(v2, p2, out.connection.readOnly); }},
                               {"caSecret", [&](N v2, P p2) { d.Read(v2, p2, out.connection.caSecret); }},
                               {"caFile", [&](N v2, P p2) { d.Read(v2, p2, out.connection.caFile); }},
                           });
                }},
               {"conditions",
                [&](N v, P p) {
                  d.List(v, p, out.conditions,
                         [&](N e, P pe, Condition& c) { return DecodeCondition(d, e, pe, c); });
                }},
               {"failovers",
                [&](N v, P p) {
                  d.List(v, p, out.failovers,
                         [&](N e, P pe, FailoverRecord& f) { return DecodeFailoverRecord(d, e, pe, f); });
                }},
               {"observedGeneration", [&](N v, P p) { d.Read(v, p, out.observedGeneration); }},
               {"maxLagBytes", [&](N v, P p) { d.Read(v, p, out.maxLagBytes); }},
               {"selector", [&](N v, P p) { d.Read(v, p, out.selector); }},
               {"backup", [&](N v, P p) { DecodeBackupStatus(d, v, p, out.backup.emplace()); }},
           });
}

// Counts the documents of a YAML stream, and notices when yaml-cpp stops
// making progress: on some malformed input (`{"a": 1}, "b" }`) yaml-cpp
// 0.7's parser hands out empty documents at one position forever, and
// YAML::LoadAll with it, until memory runs out (found by
// fuzz/manifest_fuzzer).
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    stuck_ = documents_ > 0 && mark.pos <= lastStart_.pos;
    if (stuck_) stuckAt_ = mark;
    lastStart_ = mark;
    ++documents_;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  int documents() const { return documents_; }
  bool stuck() const { return stuck_; }
  const YAML::Mark& stuckAt() const { return stuckAt_; }

 private:
  int documents_ = 0;
  bool stuck_ = false;
  YAML::Mark lastStart_;
  YAML::Mark stuckAt_;
};

std::string AtMark(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) + ": ";
}

// Where `text` stops being UTF-8 (the first byte of the bad sequence:
// overlong forms, surrogates and code points past U+10FFFF included), or
// npos. yaml-cpp reads other bytes as they are but writes them back as
// U+FFFD, so a field holding them would not survive EncodeYaml (found by
// fuzz/manifest_fuzzer); JSON and Kubernetes take UTF-8 only anyway.
std::string HexByte(unsigned char b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return {kDigits[b >> 4], kDigits[b & 0xF]};
}

size_t InvalidUtf8At(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    size_t length = 0;
    char32_t min = 0;
    char32_t c = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, min = 0x80, c = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, min = 0x800, c = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, min = 0x10000, c = lead & 0x07;
    } else {
      return i;
    }
    if (text.size() - i < length) return i;
    for (size_t k = 1; k < length; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return i;
      c = (c << 6) | (byte(i + k) & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
    i += length;
  }
  return std::string_view::npos;
}

// Parses exactly one YAML document. Never throws: yaml-cpp reports syntax
// errors (and too-deep nesting) as exceptions, which become a FieldError
// on "<document>" carrying the parser's position.
std::optional<YAML::Node> LoadDocument(const std::string& text, Decoder& d) {
  if (const size_t bad = InvalidUtf8At(text); bad != std::string_view::npos) {
    const size_t newline = text.rfind('\n', bad);  // text[bad] is no newline
    const size_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
    const size_t column = bad - (newline == std::string::npos ? 0 : newline + 1) + 1;
    d.Fail("", "is not UTF-8 text: line " + std::to_string(line) + ", column " + std::to_string(column) +
                   ": invalid byte 0x" + HexByte(static_cast<unsigned char>(text[bad])));
    return std::nullopt;
  }
  YAML::Node document;
  DocumentCounter counter;
  try {
    std::istringstream input(text);
    YAML::Parser parser(input);
    while (parser.HandleNextDocument(counter) && !counter.stuck()) {
    }
    if (counter.stuck()) {
      d.Fail("", "is not valid YAML or JSON: " + AtMark(counter.stuckAt()) + "unexpected text after the document");
      return std::nullopt;
    }
    if (counter.documents() == 1) document = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    d.Fail("", "is not valid YAML or JSON: " + AtMark(e.mark) + e.msg);
    return std::nullopt;
  } catch (const std::exception& e) {
    d.Fail("", std::string("could not be parsed: ") + e.what());
    return std::nullopt;
  }
  if (counter.documents() != 1) {
    d.Fail("", "must hold exactly one object, found " + std::to_string(counter.documents()) + " YAML documents");
    return std::nullopt;
  }
  return document;
}

// The object as far as it could be read, with every error found. Decoding
// continues past errors so that one pass reports them all.
struct Draft {
  PostgresReplicaSet object;
  std::vector<FieldError> errors;
};

Draft DecodeDraft(const std::string& text) {
  Draft draft;
  Decoder d;
  std::optional<YAML::Node> root = LoadDocument(text, d);
  if (!root) {
    draft.errors = d.TakeErrors();
    return draft;
  }
  if (!root->IsMap()) {
    d.Fail("", std::string("must be a map with apiVersion, kind, metadata and spec"));
    draft.errors = d.TakeErrors();
    return draft;
  }

  // apiVersion and kind come first: when they name another type, the rest
  // of the document follows another schema, and reporting its fields as
  // unknown would bury the one error that matters.
  std::optional<std::string> apiVersion;
  std::optional<std::string> kind;
  bool apiVersionSeen = false;
  bool kindSeen = false;
  for (const auto& entry : *root) {
    const YAML::Node key = entry.first;
    const YAML::Node value = entry.second;
    if (!key.IsScalar()) continue;
    const std::string name = key.Scalar();
    if (name == "apiVersion" && !apiVersionSeen) {
      apiVersionSeen = !value.IsNull();
      d.Read(value, name, apiVersion);
    } else if (name == "kind" && !kindSeen) {
      kindSeen = !value.IsNull();
      d.Read(value, name, kind);
    }
  }
  if (!apiVersionSeen) {
    d.Fail("apiVersion", std::string("is required (") + kApiVersion + ")");
  } else if (apiVersion && *apiVersion != kApiVersion) {
    d.Fail("apiVersion", std::string("must be ") + kApiVersion + ", not \"" + *apiVersion + "\"");
  }
  if (!kindSeen) {
    d.Fail("kind", std::string("is required (") + kKind + ")");
  } else if (kind && *kind != kKind) {
    d.Fail("kind", std::string("must be ") + kKind + ", not \"" + *kind + "\"");
  }
  const bool ourSchema = apiVersion == kApiVersion && kind == kKind;

  using N = const YAML::Node&;
  using P = const std::string&;
  PostgresReplicaSet& object = draft.object;
  if (ourSchema) {
    auto ignore = [](N, P) {};  // read (and checked) above
    d.Object(*root, "",
             {
                 {"apiVersion", ignore},
                 {"kind", ignore},
                 {"metadata", [&](N v, P p) { DecodeMetadata(d, v, p, object.metadata); }},
                 {"spec", [&](N v, P p) { DecodeSpec(d, v, p, object.spec); }},
                 {"status", [&](N v, P p) { DecodeStatus(d, v, p, object.status); }},
             });
  } else if (const YAML::Node metadata = (*root)["metadata"]; metadata.IsDefined()) {
    // Metadata is common to all kinds, and its name labels the errors.
    DecodeMetadata(d, metadata, "metadata", object.metadata);
  }

  // An ill-typed name (or metadata) has already been reported; saying "is
  // required" as well would be noise.
  const bool nameTypeError = [&] {
    for (const FieldError& e : d.errors()) {
      if (e.path == "metadata.name" || e.path == "metadata") return true;
    }
    return false;
  }();
  if (!nameTypeError) {
    if (std::string problem = CheckName(object.metadata.name); !problem.empty()) {
      d.Fail("metadata.name", problem);
    }
  }
  draft.errors = d.TakeErrors();
  return draft;
}

// ---------------------------------------------------------------------------
// Encoding

using web::json::value;

// Objects keep insertion order so that output reads apiVersion, kind,
// metadata, spec, status, like kubectl's.
value NewObject() { return value::object(/*keep_order=*/true); }

void PutString(value& obj, const char* key, const std::string& s) {
  if (!s.empty()) obj[key] = value::string(s);
}
void PutInt(value& obj, const char* key, int64_t n) {
  if (n != 0) obj[key] = value::number(n);
}
void PutOptional(value& obj, const char* key, const std::optional<int>& n) {
  if (n) obj[key] = value::number(*n);
}
void PutOptional(value& obj, const char* key, const std::optional<int64_t>& n) {
  if (n) obj[key] = value::number(*n);
}
void PutOptional(value& obj, const char* key, const std::optional<bool>& b) {
  if (b) obj[key] = value::boolean(*b);
}
void PutOptional(value& obj, const char* key, const std::optional<double>& x) {
  // JSON has no NaN or infinity, and the decoder refuses them.
  if (x && std::isfinite(*x)) obj[key] = value::number(*x);
}
void PutMap(value& obj, const char* key, const std::map<std::string, std::string>& map) {
  if (map.empty()) return;
  value out = NewObject();
  for (const auto& [k, v] : map) out[k] = value::string(v);
  obj[key] = std::move(out);
}
void PutIfNotEmpty(value& obj, const char* key, value child) {
  if (child.size() != 0) obj[key] = std::move(child);
}

value MetadataToJson(const ObjectMeta& m) {
  value out = NewObject();
  out["name"] = value::string(m.name);
  PutString(out, "namespace", m.namespace_);
  PutString(out, "uid", m.uid);
  PutString(out, "resourceVersion", m.resourceVersion);
  PutInt(out, "generation", m.generation);
  PutString(out, "creationTimestamp", m.creationTimestamp);
  PutString(out, "deletionTimestamp", m.deletionTimestamp);
  PutMap(out, "labels", m.labels);
  PutMap(out, "annotations", m.annotations);
  return out;
}

// spec.backup.schedule and status.backup.lastScheduled.
value ScheduleFieldsToJson(const std::string& full, const std::string& differential, const std::string& incremental) {
  value out = NewObject();
  PutString(out, "full", full);
  PutString(out, "differential", differential);
  PutString(out, "incremental", incremental);
  return out;
}

value RepositoryToJson(const BackupRepositorySpec& r) {
  value repository = NewObject();
  PutString(repository, "path", r.path);
  PutString(repository, "volumeClaim", r.volumeClaim);
  if (const auto& s3 = r.s3) {
    value o = NewObject();
    PutString(o, "endpoint", s3->endpoint);
    PutString(o, "bucket", s3->bucket);
    PutString(o, "region", s3->region);
    PutString(o, "uriStyle", s3->uriStyle);
    PutString(o, "path", s3->path);
    PutString(o, "credentialsFile", s3->credentialsFile);
    PutString(o, "caFile", s3->caFile);
    PutString(o, "credentialsSecret", s3->credentialsSecret);
    PutString(o, "caSecret", s3->caSecret);
    PutOptional(o, "verifyTLS", s3->verifyTLS);
    repository["s3"] = std::move(o);
  }
  return repository;
}

value SpecToJson(const ReplicaSetSpec& s) {
  value out = NewObject();
  PutOptional(out, "instances", s.instances);

  value postgres = NewObject();
  PutInt(postgres, "version", s.postgres.version);
  PutMap(postgres, "parameters", s.postgres.parameters);
  if (!s.postgres.pgHBA.empty()) {
    std::vector<value> lines;
    for (const std::string& line : s.postgres.pgHBA) lines.push_back(value::string(line));
    postgres["pgHBA"] = value::array(std::move(lines));
  }
  PutOptional(postgres, "dataChecksums", s.postgres.dataChecksums);
  PutIfNotEmpty(out, "postgres", std::move(postgres));

  value replication = NewObject();
  PutString(replication, "mode", s.replication.mode);
  PutOptional(replication, "syncReplicas", s.replication.syncReplicas);
  PutOptional(replication, "slots", s.replication.slots);
  PutString(replication, "dataDurability", s.replication.dataDurability);
  PutString(replication, "maxSlotWalKeepSize", s.replication.maxSlotWalKeepSize);
  PutIfNotEmpty(out, "replication", std::move(replication));

  value failover = NewObject();
  PutOptional(failover, "enabled", s.failover.enabled);
  PutOptional(failover, "delaySeconds", s.failover.delaySeconds);
  PutOptional(failover, "maxLagBytes", s.failover.maxLagBytes);
  PutOptional(failover, "detectionSeconds", s.failover.detectionSeconds);
  PutOptional(failover, "leaseDurationSeconds", s.failover.leaseDurationSeconds);
  PutOptional(failover, "renewDeadlineSeconds", s.failover.renewDeadlineSeconds);
  PutOptional(failover, "retryPeriodSeconds", s.failover.retryPeriodSeconds);
  PutIfNotEmpty(out, "failover", std::move(failover));

  PutString(out, "primary", s.primary);

  value tls = NewObject();
  PutOptional(tls, "enabled", s.tls.enabled);
  PutString(tls, "certificateValidity", s.tls.certificateValidity);
  PutIfNotEmpty(out, "tls", std::move(tls));

  value storage = NewObject();
  PutString(storage, "size", s.storage.size);
  PutString(storage, "storageClassName", s.storage.storageClassName);
  PutIfNotEmpty(out, "storage", std::move(storage));

  value local = NewObject();
  PutOptional(local, "basePort", s.local.basePort);
  PutIfNotEmpty(out, "local", std::move(local));

  if (s.backup) {
    value backup = NewObject();
    backup["repository"] = RepositoryToJson(s.backup->repository);
    PutOptional(backup, "fromStandby", s.backup->fromStandby);
    PutOptional(backup, "bootstrapStandbys", s.backup->bootstrapStandbys);
    PutOptional(backup, "encryption", s.backup->encryption);
    value retention = NewObject();
    PutOptional(retention, "full", s.backup->retention.full);
    PutIfNotEmpty(backup, "retention", std::move(retention));
    PutIfNotEmpty(backup, "schedule",
                  ScheduleFieldsToJson(s.backup->schedule.full, s.backup->schedule.differential,
                                       s.backup->schedule.incremental));
    out["backup"] = std::move(backup);
  }
  if (s.bootstrap) {
    value bootstrap = NewObject();
    if (s.bootstrap->recovery) {
      const RecoverySpec& r = *s.bootstrap->recovery;
      value recovery = NewObject();
      PutString(recovery, "source", r.source);
      value repository = RepositoryToJson(r.repository);
      PutOptional(repository, "encryption", r.repository.encryption);
      recovery["repository"] = std::move(repository);
      PutString(recovery, "encryptionPassphraseFile", r.encryptionPassphraseFile);
      PutString(recovery, "encryptionPassphraseSecret", r.encryptionPassphraseSecret);
      if (r.target) {
        value target = NewObject();
        PutString(target, "time", r.target->time);
        PutString(target, "lsn", r.target->lsn);
        PutString(target, "name", r.target->name);
        if (r.target->immediate) target["immediate"] = value::boolean(true);
        recovery["target"] = std::move(target);
      }
      bootstrap["recovery"] = std::move(recovery);
    }
    out["bootstrap"] = std::move(bootstrap);
  }
  return out;
}

value BackupStatusToJson(const BackupStatus& s) {
  value out = NewObject();
  std::vector<value> backups;
  for (const BackupRecord& b : s.backups) {
    value item = NewObject();
    item["label"] = value::string(b.label);
    PutString(item, "type", b.type);
    PutString(item, "startTime", b.startTime);
    PutString(item, "stopTime", b.stopTime);
    PutString(item, "startLsn", b.startLsn);
    PutString(item, "stopLsn", b.stopLsn);
    PutInt(item, "databaseSize", b.databaseSize);
    PutInt(item, "repositorySize", b.repositorySize);
    backups.push_back(std::move(item));
  }
  // Always written: "no backup" is news to a reader.
  out["backups"] = value::array(std::move(backups));
  PutString(out, "firstRecoverableTime", s.firstRecoverableTime);
  PutString(out, "lastRecoverableTime", s.lastRecoverableTime);
  PutString(out, "lastArchivedWal", s.lastArchivedWal);
  PutString(out, "lastArchivedTime", s.lastArchivedTime);
  PutString(out, "lastFailedWal", s.lastFailedWal);
  PutString(out, "lastFailedTime", s.lastFailedTime);
  PutInt(out, "archiveFailedCount", s.archiveFailedCount);
  out["archivingFailing"] = value::boolean(s.archivingFailing);
  PutString(out, "repositoryError", s.repositoryError);
  PutString(out, "repositoryCheckedTime", s.repositoryCheckedTime);
  PutIfNotEmpty(out, "lastScheduled",
                ScheduleFieldsToJson(s.lastScheduled.full, s.lastScheduled.differential, s.lastScheduled.incremental));
  if (const auto& run = s.lastScheduledBackup) {
    value r = NewObject();
    PutString(r, "type", run->type);
    PutString(r, "scheduledTime", run->scheduledTime);
    PutString(r, "startTime", run->startTime);
    PutString(r, "stopTime", run->stopTime);
    PutString(r, "outcome", run->outcome);
    PutString(r, "label", run->label);
    PutString(r, "message", run->message);
    out["lastScheduledBackup"] = std::move(r);
  }
  return out;
}

value StatusToJson(const ReplicaSetStatus& s) {
  value out = NewObject();
  PutString(out, "phase", s.phase);
  PutString(out, "currentPrimary", s.currentPrimary);
  PutString(out, "targetPrimary", s.targetPrimary);
  PutString(out, "promotionReason", s.promotionReason);
  PutString(out, "promotionStarted", s.promotionStarted);
  PutString(out, "primaryLostSince", s.primaryLostSince);
  PutInt(out, "timeline", s.timeline);
  // Zero ready instances is news to a reader, so it is always written.
  out["readyInstances"] = value::number(s.readyInstances);
  if (!s.instances.empty()) {
    std::vector<value> instances;
    for (const InstanceStatus& i : s.instances) {
      value item = NewObject();
      item["name"] = value::string(i.name);
      PutString(item, "role", i.role);
      PutString(item, "state", i.state);
      PutString(item, "host", i.host);
      PutInt(item, "port", i.port);
      PutString(item, "lsn", i.lsn);
      PutOptional(item, "lagBytes", i.lagBytes);
      PutOptional(item, "lagSeconds", i.lagSeconds);
      PutString(item, "syncState", i.syncState);
      PutInt(item, "timeline", i.timeline);
      PutString(item, "message", i.message);
      if (i.fenced) item["fenced"] = value::boolean(true);
      instances.push_back(std::move(item));
    }
    out["instances"] = value::array(std::move(instances));
  }
  value connection = NewObject();
  PutString(connection, "readWrite", s.connection.readWrite);
  PutString(connection, "readOnly", s.connection.readOnly);
  PutString(connection, "caSecret", s.connection.caSecret);
  PutString(connection, "caFile", s.connection.caFile);
  PutIfNotEmpty(out, "connection", std::move(connection));
  if (!s.conditions.empty()) {
    std::vector<value> conditions;
    for (const Condition& c : s.conditions) {
      value item = NewObject();
      item["type"] = value::string(c.type);
      item["status"] = value::string(c.status);
      PutString(item, "reason", c.reason);
      PutString(item, "message", c.message);
      PutString(item, "lastTransitionTime", c.lastTransitionTime);
      PutInt(item, "observedGeneration", c.observedGeneration);
      conditions.push_back(std::move(item));
    }
    out["conditions"] = value::array(std::move(conditions));
  }
  if (!s.failovers.empty()) {
    std::vector<value> failovers;
    for (const FailoverRecord& f : s.failovers) {
      value item = NewObject();
      PutString(item, "time", f.time);
      PutString(item, "from", f.from);
      PutString(item, "to", f.to);
      PutString(item, "reason", f.reason);
      // Always written: a failover that cost no downtime says so.
      PutOptional(item, "unavailableSeconds", std::optional<double>(f.unavailableSeconds));
      PutInt(item, "timeline", f.timeline);
      failovers.push_back(std::move(item));
    }
    out["failovers"] = value::array(std::move(failovers));
  }
  PutInt(out, "observedGeneration", s.observedGeneration);
  PutOptional(out, "maxLagBytes", s.maxLagBytes);
  PutString(out, "selector", s.selector);
  if (s.backup) out["backup"] = BackupStatusToJson(*s.backup);
  return out;
}

value ToJson(const PostgresReplicaSet& object) {
  value out = NewObject();
  out["apiVersion"] = value::string(kApiVersion);
  out["kind"] = value::string(kKind);
  out["metadata"] = MetadataToJson(object.metadata);
  out["spec"] = SpecToJson(object.spec);
  // A manifest has no status; writing an empty one would suggest a status
  // that says "0 instances ready".
  if (!(object.status == ReplicaSetStatus{})) out["status"] = StatusToJson(object.status);
  return out;
}

// cpprestsdk only writes compact JSON; scalars are still serialized by it so
// that escaping and number formatting are the same in both forms.
void WritePretty(const value& v, int depth, std::string& out) {
  const std::string indent(static_cast<size_t>(depth + 1) * 2, ' ');
  const std::string closingIndent(static_cast<size_t>(depth) * 2, ' ');
  if (v.is_object() && v.size() != 0) {
    out += "{\n";
    bool first = true;
    for (const auto& [key, child] : v.as_object()) {
      if (!first) out += ",\n";
      first = false;
      out += indent + value::string(key).serialize() + ": ";
      WritePretty(child, depth + 1, out);
    }
    out += "\n" + closingIndent + "}";
  } else if (v.is_array() && v.size() != 0) {
    out += "[\n";
    bool first = true;
    for (const value& child : v.as_array()) {
      if (!first) out += ",\n";
      first = false;
      out += indent;
      WritePretty(child, depth + 1, out);
    }
    out += "\n" + closingIndent + "]";
  } else {
    out += v.serialize();
  }
}

void EmitString(YAML::Emitter& out, const std::string& s) {
  if (NeedsQuotes(s)) {
    out << YAML::DoubleQuoted << s;
  } else {
    out << s;
  }
}

void EmitYaml(YAML::Emitter& out, const value& v) {
  switch (v.type()) {
    case value::Object:
      if (v.size() == 0) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& [key, child] : v.as_object()) {
        out << YAML::Key;
        EmitString(out, key);
        out << YAML::Value;
        EmitYaml(out, child);
      }
      out << YAML::EndMap;
      break;
    case value::Array:
      if (v.size() == 0) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const value& child : v.as_array()) EmitYaml(out, child);
      out << YAML::EndSeq;
      break;
    case value::String:
      EmitString(out, v.as_string());
      break;
    case value::Number:
      // JSON's number text is also a YAML 1.2 int or float, and keeps int64
      // values and doubles (17 significant digits) exact.
      out << v.serialize();
      break;
    case value::Boolean:
      out << (v.as_bool() ? "true" : "false");
      break;
    case value::Null:
      out << YAML::Null;
      break;
  }
}

std::string FormatErrors(const std::vector<FieldError>& errors) {
  std::string text;
  for (const FieldError& e : errors) {
    if (!text.empty()) text += "; ";
    text += e.ToString();
  }
  return text;
}

}  // namespace

DecodeResult DecodeReplicaSet(const std::string& text) {
  Draft draft = DecodeDraft(text);
  DecodeResult result;
  result.errors = std::move(draft.errors);
  if (result.errors.empty()) result.object = std::move(draft.object);
  return result;
}

ParseResult ParseManifest(const std::string& text) {
  Draft draft = DecodeDraft(text);
  std::vector<FieldError> errors = std::move(draft.errors);
  if (errors.empty()) {
    ApplyDefaults(draft.object.spec);
    errors = Validate(draft.object);
  }
  // A name that failed its own check may hold anything (spaces, newlines),
  // so only a valid one is repeated back.
  const std::string& name = draft.object.metadata.name;
  const std::string shownName = CheckName(name).empty() ? name : "<unknown>";

  ParseResult result;
  for (const FieldError& e : errors) {
    result.errors.push_back("postgresreplicaset " + shownName + ": " + e.ToString());
  }
  if (result.errors.empty()) result.object = std::move(draft.object);
  return result;
}

std::string EncodeJson(const PostgresReplicaSet& object, bool pretty) {
  const value json = ToJson(object);
  if (!pretty) return json.serialize();
  std::string out;
  WritePretty(json, 0, out);
  out += "\n";
  return out;
}

std::string EncodeYaml(const PostgresReplicaSet& object) {
  YAML::Emitter out;
  EmitYaml(out, ToJson(object));
  std::string text = out.c_str();
  text += "\n";
  return text;
}

std::string EncodeStatusJson(const ReplicaSetStatus& status) {
  return StatusToJson(status).serialize();
}

Result<ReplicaSetStatus> DecodeStatusJson(const std::string& text) {
  Decoder d;
  std::optional<YAML::Node> root = LoadDocument(text, d);
  ReplicaSetStatus status;
  if (root) {
    if (root->IsMap()) {
      DecodeStatus(d, *root, "status", status);
    } else {
      d.Fail("status", "must be a map");
    }
  }
  if (!d.errors().empty()) return Status::Invalid("invalid status: " + FormatErrors(d.errors()));
  return status;
}

}  // namespace pgrs::api
