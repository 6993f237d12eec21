// Names, defaults and validation of PostgresReplicaSet. Decoding and encoding
// live in codec.cc.
#include "operator/api/types.h"

#include <charconv>
#include <string_view>

#include "operator/postgres/config.h"

namespace pgrs::api {

namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// postgresql.conf names are case-insensitive; accepting only the lowercase
// spelling keeps one key per parameter in the map and makes owned-parameter
// checks exact. Dots allow extension settings (auto_explain.log_min_duration).
bool IsParameterName(const std::string& name) {
  if (name.empty()) return false;
  const char first = name.front();
  if (!((first >= 'a' && first <= 'z') || first == '_')) return false;
  for (char c : name) {
    if (!(IsLowerAlnum(c) || c == '_' || c == '.')) return false;
  }
  return true;
}

// A Kubernetes quantity as used for volume sizes: digits with an optional
// fraction, then a binary (Ki..Ei) or decimal (k..E) suffix or a decimal
// exponent. Signs and sub-unit suffixes (m, u, n) are refused because a
// volume cannot hold a negative or fractional number of bytes; zero is
// refused because such a volume cannot hold a data directory.
bool IsStorageQuantity(std::string_view text) {
  size_t i = 0;
  bool nonzero = false;
  size_t digits = 0;
  while (i < text.size() && IsDigit(text[i])) {
    nonzero |= text[i] != '0';
    ++i;
    ++digits;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && IsDigit(text[i])) {
      nonzero |= text[i] != '0';
      ++i;
      ++digits;
    }
  }
  if (digits == 0 || !nonzero) return false;
  const std::string_view suffix = text.substr(i);
  static constexpr std::string_view kSuffixes[] = {"",  "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
                                                   "k", "M",  "G",  "T",  "P",  "E"};
  for (std::string_view s : kSuffixes) {
    if (suffix == s) return true;
  }
  // Decimal exponent: e3, E+6, e-1 (Kubernetes accepts either case).
  if (suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    size_t j = 1;
    if (suffix[j] == '+' || suffix[j] == '-') ++j;
    if (j == suffix.size()) return false;
    for (; j < suffix.size(); ++j) {
      if (!IsDigit(suffix[j])) return false;
    }
    return true;
  }
  return false;
}

bool HasLineBreak(const std::string& text) {
  return text.find_first_of("\r\n") != std::string::npos || text.find('\0') != std::string::npos;
}

bool IsBlank(const std::string& text) {
  return text.find_first_not_of(" \t") == std::string::npos;
}

}  // namespace

std::string CheckName(const std::string& name) {
  if (name.empty()) return "is required";
  if (name.size() > static_cast<size_t>(kMaxNameLength)) {
    return "must be at most " + std::to_string(kMaxNameLength) + " characters";
  }
  bool charsOk = IsLowerAlnum(name.front()) && IsLowerAlnum(name.back());
  for (char c : name) charsOk = charsOk && (IsLowerAlnum(c) || c == '-');
  if (!charsOk) {
    return "must consist of lowercase letters, digits and '-', and start and end with a letter or digit";
  }
  return "";
}

std::string InstanceName(const std::string& set, int index) {
  return set + "-" + std::to_string(index);
}

int InstanceIndex(const std::string& set, const std::string& instance) {
  if (instance.size() <= set.size() + 1) return 0;
  if (instance.compare(0, set.size(), set) != 0 || instance[set.size()] != '-') return 0;
  const std::string_view suffix = std::string_view(instance).substr(set.size() + 1);
  // Only the spelling InstanceName produces counts: no sign, no leading zero,
  // so that each instance has exactly one name.
  if (suffix.front() == '0') return 0;
  for (char c : suffix) {
    if (!IsDigit(c)) return 0;
  }
  int index = 0;
  const auto [end, ec] = std::from_chars(suffix.data(), suffix.data() + suffix.size(), index);
  if (ec != std::errc() || end != suffix.data() + suffix.size()) return 0;
  return index;
}

const Condition* FindCondition(const ReplicaSetStatus& status, const std::string& type) {
  for (const Condition& condition : status.conditions) {
    if (condition.type == type) return &condition;
  }
  return nullptr;
}

void ApplyDefaults(ReplicaSetSpec& spec) {
  if (!spec.instances) spec.instances = kMinInstances;
  if (spec.postgres.version == 0) spec.postgres.version = kDefaultPostgresVersion;
  if (spec.replication.mode.empty()) spec.replication.mode = "async";
  // Defaulted in async mode too, so that switching a set to sync mode does
  // not silently change what the stored object says.
  if (!spec.replication.syncReplicas) spec.replication.syncReplicas = 1;
  if (!spec.replication.slots) spec.replication.slots = true;
  if (!spec.failover.enabled) spec.failover.enabled = true;
  if (!spec.failover.delaySeconds) spec.failover.delaySeconds = 0;
  if (spec.storage.size.empty()) spec.storage.size = "1Gi";
  if (!spec.local.basePort) spec.local.basePort = kDefaultBasePort;
}

std::vector<FieldError> Validate(const PostgresReplicaSet& object) {
  std::vector<FieldError> errors;
  auto fail = [&errors](std::string path, std::string message) {
    errors.push_back(FieldError{std::move(path), std::move(message)});
  };

  const std::string& name = object.metadata.name;
  if (std::string problem = CheckName(name); !problem.empty()) fail("metadata.name", problem);

  // Validation is defined on defaulted objects; defaulting a copy here means
  // a caller that forgot ApplyDefaults gets the same answer instead of a
  // crash on an unset optional.
  ReplicaSetSpec spec = object.spec;
  ApplyDefaults(spec);

  const int instances = *spec.instances;
  const bool instancesValid = instances >= kMinInstances && instances <= kMaxInstances;
  if (!instancesValid) {
    fail("spec.instances", "must be between " + std::to_string(kMinInstances) + " and " +
                               std::to_string(kMaxInstances));
  }

  const int version = spec.postgres.version;
  if (version < kMinPostgresVersion || version > kMaxPostgresVersion) {
    fail("spec.postgres.version", "must be between " + std::to_string(kMinPostgresVersion) +
                                      " and " + std::to_string(kMaxPostgresVersion));
  }

  for (const auto& [parameter, value] : spec.postgres.parameters) {
    const std::string path = "spec.postgres.parameters." + parameter;
    if (!IsParameterName(parameter)) {
      fail(path, "must be a lowercase parameter name ([a-z_][a-z0-9_.]*)");
    } else if (postgres::IsOwnedParameter(parameter)) {
      fail(path, "is managed by pgrs and cannot be set");
    }
    // postgresql.conf has no way to continue a value on the next line.
    if (HasLineBreak(value)) fail(path, "must not contain a line break");
  }

  for (size_t i = 0; i < spec.postgres.pgHBA.size(); ++i) {
    const std::string& line = spec.postgres.pgHBA[i];
    const std::string path = "spec.postgres.pgHBA[" + std::to_string(i) + "]";
    // One entry is one pg_hba.conf rule; a line break would smuggle in more
    // rules, possibly ahead of the ones pgrs relies on.
    if (HasLineBreak(line)) {
      fail(path, "must not contain a line break");
    } else if (IsBlank(line)) {
      fail(path, "must not be empty");
    }
  }

  const std::string& mode = spec.replication.mode;
  if (mode != "async" && mode != "sync") {
    fail("spec.replication.mode", "must be one of async, sync");
  }
  if (mode == "sync") {
    const int syncReplicas = *spec.replication.syncReplicas;
    if (syncReplicas < 1) {
      fail("spec.replication.syncReplicas", "must be at least 1");
    } else if (syncReplicas >= instances) {
      // A synchronous standby that cannot exist would block every commit.
      fail("spec.replication.syncReplicas",
           "must be less than spec.instances (" + std::to_string(instances) + ")");
    }
  }

  if (*spec.failover.delaySeconds < 0) {
    fail("spec.failover.delaySeconds", "must not be negative");
  }
  if (spec.failover.maxLagBytes && *spec.failover.maxLagBytes < 0) {
    fail("spec.failover.maxLagBytes", "must not be negative");
  }

  if (!spec.primary.empty()) {
    const int index = InstanceIndex(name, spec.primary);
    // With an invalid instance count the range is unknown; only the form of
    // the name can be checked then.
    const int last = instancesValid ? instances : kMaxInstances;
    if (index < 1 || index > last) {
      const std::string range = last == 1 ? InstanceName(name, 1)
                                          : InstanceName(name, 1) + ".." + InstanceName(name, last);
      fail("spec.primary", "must name an instance of this set (" + range + ")");
    }
  }

  if (!IsStorageQuantity(spec.storage.size)) {
    fail("spec.storage.size", "must be a quantity of bytes such as 1Gi, 500Mi, 10G or 1024");
  }

  const int basePort = *spec.local.basePort;
  if (basePort < 1024 || basePort > 65535) {
    fail("spec.local.basePort", "must be between 1024 and 65535");
  } else if (instancesValid && basePort + instances - 1 > 65535) {
    // Instance N listens on basePort + N - 1.
    fail("spec.local.basePort", "must leave room for spec.instances (" + std::to_string(instances) +
                                    ") ports: at most " + std::to_string(65535 - instances + 1));
  }

  return errors;
}

}  // namespace pgrs::api
