// Names, defaults and validation of PostgresReplicaSet. Decoding and encoding
// live in codec.cc.
#include "operator/api/types.h"

#include <charconv>
#include <cstdio>
#include <string_view>

#include "operator/postgres/config.h"
#include "operator/util/cron.h"
#include "operator/util/duration.h"
#include "operator/util/lsn.h"

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

// The `width` digits of `text` at `pos` as a number, or -1 when any is not a
// digit.
int Digits(std::string_view text, size_t pos, size_t width) {
  int n = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (!IsDigit(text[i])) return -1;
    n = n * 10 + (text[i] - '0');
  }
  return n;
}

}  // namespace

std::string CheckName(const std::string& name) {
  if (name.empty()) return "is required";
  if (name.size() > static_cast<size_t>(kMaxNameLength)) {
    return "must be at most " + std::to_string(kMaxNameLength) + " characters";
  }
  // A letter first: Service names ("<name>-rw") must be DNS-1035 labels.
  bool charsOk = name.front() >= 'a' && name.front() <= 'z' && IsLowerAlnum(name.back());
  for (char c : name) charsOk = charsOk && (IsLowerAlnum(c) || c == '-');
  if (!charsOk) {
    return "must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit";
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

std::chrono::seconds CertificateValidity(const ReplicaSetSpec& spec) {
  auto validity = ParseDuration(spec.tls.certificateValidity.empty() ? kDefaultCertificateValidity
                                                                     : spec.tls.certificateValidity);
  return validity ? std::chrono::duration_cast<std::chrono::seconds>(*validity)
                  : std::chrono::seconds(2160LL * 3600);
}

void ApplyDefaults(ReplicaSetSpec& spec) {
  if (!spec.instances) spec.instances = kMinInstances;
  if (spec.postgres.version == 0) spec.postgres.version = kDefaultPostgresVersion;
  if (!spec.postgres.dataChecksums) spec.postgres.dataChecksums = true;
  if (spec.replication.mode.empty()) spec.replication.mode = "async";
  // Defaulted in async mode too, so that switching a set to sync mode does
  // not silently change what the stored object says.
  if (!spec.replication.syncReplicas) spec.replication.syncReplicas = 1;
  if (!spec.replication.slots) spec.replication.slots = true;
  if (spec.replication.dataDurability.empty()) spec.replication.dataDurability = "required";
  if (spec.replication.maxSlotWalKeepSize.empty()) spec.replication.maxSlotWalKeepSize = kDefaultMaxSlotWalKeepSize;
  if (!spec.failover.enabled) spec.failover.enabled = true;
  if (!spec.failover.delaySeconds) spec.failover.delaySeconds = 0;
  if (!spec.failover.detectionSeconds) spec.failover.detectionSeconds = 5;
  if (!spec.failover.leaseDurationSeconds) spec.failover.leaseDurationSeconds = 5;
  if (!spec.failover.renewDeadlineSeconds) spec.failover.renewDeadlineSeconds = 3;
  if (!spec.failover.retryPeriodSeconds) spec.failover.retryPeriodSeconds = 1;
  if (spec.storage.size.empty()) spec.storage.size = "1Gi";
  if (!spec.local.basePort) spec.local.basePort = kDefaultBasePort;
  if (!spec.tls.enabled) spec.tls.enabled = true;
  if (spec.tls.certificateValidity.empty()) spec.tls.certificateValidity = kDefaultCertificateValidity;
  if (spec.backup && !spec.backup->fromStandby) spec.backup->fromStandby = true;
  if (spec.backup && !spec.backup->bootstrapStandbys) spec.backup->bootstrapStandbys = false;
  if (spec.backup && !spec.backup->encryption) spec.backup->encryption = false;
  if (spec.bootstrap && spec.bootstrap->recovery && !spec.bootstrap->recovery->repository.encryption) {
    spec.bootstrap->recovery->repository.encryption = false;
  }
  auto defaultS3 = [](std::optional<S3RepositorySpec>& s3) {
    if (!s3) return;
    if (s3->uriStyle.empty()) s3->uriStyle = "host";
    if (s3->path.empty()) s3->path = "/";
    if (!s3->verifyTLS) s3->verifyTLS = true;
  };
  if (spec.backup) defaultS3(spec.backup->repository.s3);
  if (spec.bootstrap && spec.bootstrap->recovery) defaultS3(spec.bootstrap->recovery->repository.s3);
}

std::optional<Endpoint> ParseEndpoint(const std::string& text) {
  Endpoint e;
  e.host = text;
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos) {
    e.host = text.substr(0, colon);
    const std::string port = text.substr(colon + 1);
    if (port.empty() || port.size() > 5) return std::nullopt;
    for (char c : port) {
      if (!IsDigit(c)) return std::nullopt;
    }
    e.port = std::stoi(port);
    if (e.port < 1 || e.port > 65535) return std::nullopt;
  }
  if (e.host.empty() || e.host.front() == '.' || e.host.front() == '-') return std::nullopt;
  for (char c : e.host) {
    const bool alnum = IsLowerAlnum(c) || (c >= 'A' && c <= 'Z');
    if (!alnum && c != '.' && c != '-') return std::nullopt;
  }
  return e;
}

namespace {

// An absolute path that goes into pgbackrest.conf, a line-based file.
template <typename Fail>
void ValidateRepositoryPath(const std::string& value, const std::string& path, bool required, Fail& fail) {
  if (value.empty()) {
    if (required) fail(path, "is required");
  } else if (value[0] != '/') {
    fail(path, "must be an absolute path");
  } else if (HasLineBreak(value)) {
    fail(path, "must not contain a line break");
  }
}

// A Kubernetes object name (DNS-1123 subdomain).
bool IsObjectName(const std::string& name) {
  if (name.empty() || name.size() > 253 || !IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) return false;
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

template <typename Fail>
void ValidateS3(const S3RepositorySpec& s3, const std::string& path, Fail& fail) {
  if (s3.endpoint.empty()) {
    fail(path + ".endpoint", "is required");
  } else if (!ParseEndpoint(s3.endpoint)) {
    fail(path + ".endpoint", "must be a host name or address with an optional :port (1-65535), without a scheme, "
                             "such as s3.eu-west-1.amazonaws.com or minio.example:9000");
  }
  if (s3.bucket.empty()) {
    fail(path + ".bucket", "is required");
  } else {
    bool valid = s3.bucket.size() >= 3 && s3.bucket.size() <= 63 && IsLowerAlnum(s3.bucket.front()) &&
                 IsLowerAlnum(s3.bucket.back());
    for (char c : s3.bucket) valid = valid && (IsLowerAlnum(c) || c == '-' || c == '.');
    if (!valid) fail(path + ".bucket", "must be an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'");
  }
  if (s3.region.empty()) {
    fail(path + ".region", "is required (e.g. us-east-1; S3-compatible servers accept any)");
  } else if (HasLineBreak(s3.region) || s3.region.find_first_of(" \t") != std::string::npos) {
    fail(path + ".region", "must be one word, such as us-east-1");
  }
  if (s3.uriStyle != "host" && s3.uriStyle != "path") fail(path + ".uriStyle", "must be host or path");
  ValidateRepositoryPath(s3.path, path + ".path", true, fail);
  if (s3.credentialsFile.empty() == s3.credentialsSecret.empty()) {
    fail(path, "exactly one of credentialsFile (local mode) and credentialsSecret (Kubernetes) must be set");
  }
  ValidateRepositoryPath(s3.credentialsFile, path + ".credentialsFile", false, fail);
  if (!s3.credentialsSecret.empty() && !IsObjectName(s3.credentialsSecret)) {
    fail(path + ".credentialsSecret", "must be a Secret's name (lowercase letters, digits, '-' and '.')");
  }
  if (!s3.caFile.empty() && !s3.caSecret.empty()) fail(path, "at most one of caFile and caSecret may be set");
  ValidateRepositoryPath(s3.caFile, path + ".caFile", false, fail);
  if (!s3.caSecret.empty() && !IsObjectName(s3.caSecret)) {
    fail(path + ".caSecret", "must be a Secret's name (lowercase letters, digits, '-' and '.')");
  }
}

template <typename Fail>
void ValidateRepository(const BackupRepositorySpec& repository, const std::string& path, Fail& fail) {
  const int kinds = !repository.path.empty() + !repository.volumeClaim.empty() + repository.s3.has_value();
  if (kinds != 1) {
    fail(path, "exactly one of path (a POSIX repository, local mode), volumeClaim (a ReadWriteMany "
               "PersistentVolumeClaim, Kubernetes) and s3 must be set");
  }
  if (!repository.path.empty()) ValidateRepositoryPath(repository.path, path + ".path", true, fail);
  if (!repository.volumeClaim.empty() && !IsObjectName(repository.volumeClaim)) {
    fail(path + ".volumeClaim", "must be a PersistentVolumeClaim's name (lowercase letters, digits, '-' and '.')");
  }
  if (repository.s3) ValidateS3(*repository.s3, path + ".s3", fail);
}

}  // namespace

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
    } else if (parameter == "max_slot_wal_keep_size") {
      fail(path, "is managed by pgrs: set spec.replication.maxSlotWalKeepSize instead");
    } else if (postgres::IsOwnedParameter(parameter)) {
      fail(path, "is managed by pgrs and cannot be set");
    }
    // postgresql.conf has no way to continue a value on the next line.
    if (HasLineBreak(value)) fail(path, "must not contain a line break");
    if (spec.backup && postgres::IsArchiveParameter(parameter)) {
      fail(path, "is managed by pgrs when spec.backup is set and cannot be set");
    }
    if (spec.tls.enabled.value_or(true) && postgres::IsTlsParameter(parameter)) {
      fail(path, "is managed by pgrs while spec.tls.enabled is true and cannot be set");
    }
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
  // Checked in async mode too: a misspelled value is never meant, and would
  // otherwise surface only when the set is switched to sync mode.
  const std::string& durability = spec.replication.dataDurability;
  if (durability != "required" && durability != "preferred") {
    fail("spec.replication.dataDurability", "must be one of required, preferred");
  }
  const std::optional<int64_t> slotBound = postgres::WalSizeMegabytes(spec.replication.maxSlotWalKeepSize);
  if (!slotBound || (*slotBound >= 0 && *slotBound < kMinMaxSlotWalKeepSizeMegabytes)) {
    fail("spec.replication.maxSlotWalKeepSize",
         "must be -1 (no bound) or a size of at least " + std::to_string(kMinMaxSlotWalKeepSizeMegabytes) +
             "MB in MB, GB or TB, such as 512MB or 2GB");
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
  const int detection = *spec.failover.detectionSeconds;
  if (detection < 1 || detection > 300) {
    fail("spec.failover.detectionSeconds", "must be between 1 and 300");
  }
  // The lease timings only work in this order: the agent renews every
  // retryPeriod, gives up (and stops PostgreSQL) after renewDeadline, and
  // only after leaseDuration may another instance be promoted. Each
  // comparison is made only when the larger side is itself valid, so that
  // one mistake is reported once.
  const int lease = *spec.failover.leaseDurationSeconds;
  const int renew = *spec.failover.renewDeadlineSeconds;
  const int retry = *spec.failover.retryPeriodSeconds;
  // 3, not 2: whole seconds with 1 <= retry < renew < lease leave no room
  // below 3, and a bound that no renewDeadlineSeconds can meet would send
  // the user back and forth between two errors.
  const bool leaseValid = lease >= 3 && lease <= 300;
  if (!leaseValid) fail("spec.failover.leaseDurationSeconds", "must be between 3 and 300");
  // retryPeriodSeconds (at least 1) must fit below it.
  const bool renewAboveMinimum = renew >= 2;
  if (!renewAboveMinimum) {
    fail("spec.failover.renewDeadlineSeconds", "must be at least 2");
  } else if (leaseValid && renew >= lease) {
    fail("spec.failover.renewDeadlineSeconds",
         "must be less than spec.failover.leaseDurationSeconds (" + std::to_string(lease) + ")");
  }
  if (retry < 1) {
    fail("spec.failover.retryPeriodSeconds", "must be at least 1");
  } else if (renewAboveMinimum && retry >= renew) {
    fail("spec.failover.retryPeriodSeconds",
         "must be less than spec.failover.renewDeadlineSeconds (" + std::to_string(renew) + ")");
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

  if (auto validity = ParseDuration(spec.tls.certificateValidity);
      !validity || *validity < kMinCertificateValidity || *validity > kMaxCertificateValidity) {
    fail("spec.tls.certificateValidity", "must be a duration such as 2160h or 90m, from 1m to 8760h (one year)");
  }

  if (spec.backup) {
    ValidateRepository(spec.backup->repository, "spec.backup.repository", fail);
    const std::optional<int>& full = spec.backup->retention.full;
    if (full && (*full < 1 || *full > kMaxRetentionFull)) {
      fail("spec.backup.retention.full", "must be between 1 and " + std::to_string(kMaxRetentionFull));
    }
    const BackupScheduleSpec& schedule = spec.backup->schedule;
    for (const auto& [field, cron] : {std::pair<const char*, const std::string&>{"full", schedule.full},
                                      {"differential", schedule.differential},
                                      {"incremental", schedule.incremental}}) {
      if (cron.empty()) continue;
      if (auto parsed = ParseCron(cron); !parsed.ok()) {
        fail(std::string("spec.backup.schedule.") + field, parsed.status().message());
      }
    }
  }

  if (spec.bootstrap && spec.bootstrap->recovery) {
    const RecoverySpec& r = *spec.bootstrap->recovery;
    const std::string path = "spec.bootstrap.recovery";
    if (r.source.empty()) {
      fail(path + ".source", "is required: the name of the set whose backups to restore (its pgBackRest stanza)");
    } else if (std::string problem = CheckName(r.source); !problem.empty()) {
      fail(path + ".source", problem);
    }
    ValidateRepository(r.repository, path + ".repository", fail);
    const bool encrypted = r.repository.encryption.value_or(false);
    for (const auto& [field, value] :
         {std::pair<const char*, const std::string&>{"encryptionPassphraseFile", r.encryptionPassphraseFile},
          {"encryptionPassphraseSecret", r.encryptionPassphraseSecret}}) {
      if (!value.empty() && !encrypted) {
        fail(path + "." + field, "needs spec.bootstrap.recovery.repository.encryption: true");
      }
    }
    if (!r.encryptionPassphraseFile.empty() && !r.encryptionPassphraseSecret.empty()) {
      fail(path, "at most one of encryptionPassphraseFile and encryptionPassphraseSecret may be set");
    }
    ValidateRepositoryPath(r.encryptionPassphraseFile, path + ".encryptionPassphraseFile", false, fail);
    if (!r.encryptionPassphraseSecret.empty() && !IsObjectName(r.encryptionPassphraseSecret)) {
      fail(path + ".encryptionPassphraseSecret", "must be a Secret's name (lowercase letters, digits, '-' and '.')");
    }
    if (spec.postgres.version < 12) {
      fail(path, "needs spec.postgres.version 12 or later (recovery.signal and recovery settings in postgresql.conf)");
    }
    if (r.target) {
      const RecoveryTargetSpec& t = *r.target;
      const int set = !t.time.empty() + !t.lsn.empty() + !t.name.empty() + t.immediate;
      if (set > 1) {
        fail(path + ".target", "must name at most one of time, lsn, name and immediate");
      }
      if (!t.time.empty() && !ParseTime(t.time)) {
        fail(path + ".target.time", "must be an RFC 3339 time in UTC such as 2026-12-03T10:00:00Z");
      }
      if (!t.lsn.empty() && !ParseLsn(t.lsn)) {
        fail(path + ".target.lsn", "must be a WAL position such as 0/3000060");
      }
      if (!t.name.empty() && (HasLineBreak(t.name) || t.name.find('\'') != std::string::npos || t.name.size() > 63)) {
        fail(path + ".target.name", "must be a restore point name of at most 63 characters without quotes or line breaks");
      }
    }
  }

  return errors;
}

std::vector<FieldError> ValidateForMode(const PostgresReplicaSet& object, Mode mode) {
  std::vector<FieldError> errors;
  auto check = [&](const BackupRepositorySpec& r, const std::string& path) {
    if (mode == Mode::kKubernetes) {
      if (!r.path.empty()) {
        errors.push_back({path + ".path", "is local mode's: in Kubernetes a directory of a Pod is lost with it; use "
                                          "volumeClaim (a ReadWriteMany PersistentVolumeClaim) or s3"});
      }
      if (r.s3 && !r.s3->credentialsFile.empty()) {
        errors.push_back({path + ".s3.credentialsFile", "is local mode's: in Kubernetes set credentialsSecret"});
      }
      if (r.s3 && !r.s3->caFile.empty()) {
        errors.push_back({path + ".s3.caFile", "is local mode's: in Kubernetes set caSecret"});
      }
    } else {
      if (!r.volumeClaim.empty()) {
        errors.push_back({path + ".volumeClaim", "is Kubernetes' only: in local mode set path (a directory)"});
      }
      if (r.s3 && !r.s3->credentialsSecret.empty()) {
        errors.push_back({path + ".s3.credentialsSecret", "is Kubernetes' only: in local mode set credentialsFile"});
      }
      if (r.s3 && !r.s3->caSecret.empty()) {
        errors.push_back({path + ".s3.caSecret", "is Kubernetes' only: in local mode set caFile"});
      }
    }
  };
  if (object.spec.backup) check(object.spec.backup->repository, "spec.backup.repository");
  if (object.spec.bootstrap && object.spec.bootstrap->recovery) {
    const RecoverySpec& recovery = *object.spec.bootstrap->recovery;
    check(recovery.repository, "spec.bootstrap.recovery.repository");
    if (mode == Mode::kKubernetes && !recovery.encryptionPassphraseFile.empty()) {
      errors.push_back({"spec.bootstrap.recovery.encryptionPassphraseFile",
                        "is local mode's: in Kubernetes set encryptionPassphraseSecret"});
    }
    if (mode == Mode::kLocal && !recovery.encryptionPassphraseSecret.empty()) {
      errors.push_back({"spec.bootstrap.recovery.encryptionPassphraseSecret",
                        "is Kubernetes' only: in local mode set encryptionPassphraseFile, or leave both unset for "
                        "the source set's kept passphrase"});
    }
  }
  return errors;
}

std::vector<FieldError> ValidateUpdate(const PostgresReplicaSet& existing, const PostgresReplicaSet& updated) {
  std::vector<FieldError> errors;
  if (existing.spec.bootstrap != updated.spec.bootstrap) {
    errors.push_back({"spec.bootstrap",
                      "cannot change once the set exists: a set is bootstrapped (and restored) only when it is "
                      "created; restore into a new set instead"});
  }
  if (existing.spec.backup && updated.spec.backup &&
      existing.spec.backup->encryption.value_or(false) != updated.spec.backup->encryption.value_or(false)) {
    errors.push_back({"spec.backup.encryption",
                      "cannot change once the set exists: pgBackRest cannot mix encrypted and plain files in the "
                      "set's stanza; create a new set (a restore into it keeps the data)"});
  }
  return errors;
}

std::string FormatTimeMillis(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  // floor, not duration_cast: before 1970 the latter would round toward the
  // epoch and name a later moment.
  const auto millis = floor<milliseconds>(t);
  const auto day = floor<days>(millis);
  const year_month_day date{day};
  const hh_mm_ss clock{millis - day};
  char text[32];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return text;
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  // The millisecond form without its fraction: one formatter for both.
  std::string text = FormatTimeMillis(std::chrono::floor<std::chrono::seconds>(t));
  return text.substr(0, text.size() - 5) + "Z";
}

std::optional<std::chrono::system_clock::time_point> ParseTime(const std::string& text) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z
  constexpr size_t kSecondsEnd = 19;
  if (text.size() < kSecondsEnd + 1 || text.back() != 'Z') return std::nullopt;
  if (text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  const int yearNumber = Digits(text, 0, 4);
  const int monthNumber = Digits(text, 5, 2);
  const int dayNumber = Digits(text, 8, 2);
  const int hour = Digits(text, 11, 2);
  const int minute = Digits(text, 14, 2);
  const int second = Digits(text, 17, 2);
  if (yearNumber < 0 || monthNumber < 0 || dayNumber < 0 || hour < 0 || minute < 0 || second < 0) {
    return std::nullopt;
  }
  // No leap seconds: system_clock does not count them.
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  const year_month_day date{year{yearNumber}, month{static_cast<unsigned>(monthNumber)},
                            day{static_cast<unsigned>(dayNumber)}};
  if (!date.ok()) return std::nullopt;

  nanoseconds fraction{0};
  const size_t fractionEnd = text.size() - 1;  // the 'Z'
  if (fractionEnd != kSecondsEnd) {
    const size_t digits = fractionEnd - kSecondsEnd - 1;
    if (text[kSecondsEnd] != '.' || digits < 1 || digits > 9) return std::nullopt;
    int64_t value = Digits(text, kSecondsEnd + 1, digits);
    if (value < 0) return std::nullopt;
    for (size_t i = digits; i < 9; ++i) value *= 10;
    fraction = nanoseconds{value};
  }

  // Whole seconds since the epoch fit in 64 bits for any four-digit year;
  // the clock's own duration (nanoseconds here) may not.
  const seconds sinceEpoch = sys_days{date}.time_since_epoch() + hours{hour} + minutes{minute} + seconds{second};
  using Clock = system_clock;
  const seconds earliest = ceil<seconds>(Clock::time_point::min().time_since_epoch());
  const seconds latest = floor<seconds>(Clock::time_point::max().time_since_epoch()) - seconds{1};
  if (sinceEpoch < earliest || sinceEpoch > latest) return std::nullopt;
  return Clock::time_point{duration_cast<Clock::duration>(sinceEpoch) +
                           duration_cast<Clock::duration>(fraction)};
}

}  // namespace pgrs::api
