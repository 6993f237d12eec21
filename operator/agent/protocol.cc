#include "operator/agent/protocol.h"

#include <cpprest/json.h>
#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>

#include "operator/util/json.h"

namespace pgrs::agent {

namespace json = web::json;

namespace {

std::string Str(const json::value& v, const char* key) {
  return v.has_string_field(key) ? v.at(key).as_string() : std::string();
}
// 0 when absent; a number that is no integer (5.5, 1e300) is Invalid, by
// the decoder's catch.
int64_t Int(const json::value& v, const char* key) {
  if (!v.has_number_field(key)) return 0;
  std::optional<int64_t> n = JsonInt64(v.at(key));
  if (!n) throw std::invalid_argument(std::string(key) + ": not an integer: " + v.at(key).serialize());
  return *n;
}
// The same within int's range: 4294972728 is no port 5432.
int Int32(const json::value& v, const char* key) {
  if (!v.has_number_field(key)) return 0;
  std::optional<int> n = JsonInt32(v.at(key));
  if (!n) throw std::invalid_argument(std::string(key) + ": not a 32-bit integer: " + v.at(key).serialize());
  return *n;
}
bool Bool(const json::value& v, const char* key) { return v.has_boolean_field(key) && v.at(key).as_bool(); }

json::value StringList(const std::vector<std::string>& list) {
  auto out = json::value::array(list.size());
  for (size_t i = 0; i < list.size(); ++i) out[i] = json::value::string(list[i]);
  return out;
}
std::vector<std::string> ReadStringList(const json::value& v, const char* key) {
  std::vector<std::string> out;
  if (!v.has_array_field(key)) return out;
  for (const auto& e : v.at(key).as_array()) {
    if (e.is_string()) out.push_back(e.as_string());
  }
  return out;
}

// config.backupS3 and config.restore.s3.
json::value EncodeS3(const S3RepositoryConfig& s3) {
  json::value o = json::value::object();
  o["endpoint"] = json::value::string(s3.endpoint);
  o["port"] = json::value::number(s3.port);
  o["bucket"] = json::value::string(s3.bucket);
  o["region"] = json::value::string(s3.region);
  o["uriStyle"] = json::value::string(s3.uriStyle);
  o["verifyTLS"] = json::value::boolean(s3.verifyTLS);
  o["key"] = json::value::string(s3.key);
  o["keySecret"] = json::value::string(s3.keySecret);
  o["ca"] = json::value::string(s3.ca);
  return o;
}

Result<S3RepositoryConfig> DecodeS3(const json::value& o, const std::string& path) {
  S3RepositoryConfig s3;
  s3.endpoint = Str(o, "endpoint");
  s3.port = Int32(o, "port");
  s3.bucket = Str(o, "bucket");
  s3.region = Str(o, "region");
  s3.uriStyle = Str(o, "uriStyle");
  s3.verifyTLS = !o.has_boolean_field("verifyTLS") || o.at("verifyTLS").as_bool();
  s3.key = Str(o, "key");
  s3.keySecret = Str(o, "keySecret");
  s3.ca = Str(o, "ca");
  if (s3.endpoint.empty() || s3.bucket.empty()) return Status::Invalid(path + ": endpoint and bucket are required");
  return s3;
}

json::value BackupInfoJson(const BackupInfo& b) {
  json::value item = json::value::object();
  item["label"] = json::value::string(b.label);
  item["type"] = json::value::string(b.type);
  item["startTime"] = json::value::number(b.startTime);
  item["stopTime"] = json::value::number(b.stopTime);
  item["startLsn"] = json::value::string(b.startLsn);
  item["stopLsn"] = json::value::string(b.stopLsn);
  item["databaseSize"] = json::value::number(b.databaseSize);
  item["repositorySize"] = json::value::number(b.repositorySize);
  return item;
}

BackupInfo ReadBackupInfo(const json::value& item) {
  BackupInfo b;
  b.label = Str(item, "label");
  b.type = Str(item, "type");
  b.startTime = Int(item, "startTime");
  b.stopTime = Int(item, "stopTime");
  b.startLsn = Str(item, "startLsn");
  b.stopLsn = Str(item, "stopLsn");
  b.databaseSize = Int(item, "databaseSize");
  b.repositorySize = Int(item, "repositorySize");
  return b;
}

}  // namespace

bool ValidBackupType(const std::string& type) { return type == "full" || type == "diff" || type == "incr"; }

std::string EncodeAgentConfig(const AgentConfig& c) {
  json::value v = json::value::object();
  v["role"] = json::value::string(c.role);
  v["majorVersion"] = json::value::number(c.majorVersion);
  v["listenAddresses"] = json::value::string(c.listenAddresses);
  v["port"] = json::value::number(c.port);
  json::value params = json::value::object();
  for (const auto& [k, val] : c.parameters) params[k] = json::value::string(val);
  v["parameters"] = params;
  v["pgHBA"] = StringList(c.pgHBA);
  v["clientNetworks"] = StringList(c.clientNetworks);
  v["replicationUser"] = json::value::string(c.replicationUser);
  v["upstreamHost"] = json::value::string(c.upstreamHost);
  v["upstreamPort"] = json::value::number(c.upstreamPort);
  v["slotName"] = json::value::string(c.slotName);
  v["synchronousStandbyNames"] = json::value::string(c.synchronousStandbyNames);
  v["superuserPassword"] = json::value::string(c.superuserPassword);
  v["replicationPassword"] = json::value::string(c.replicationPassword);
  v["fenced"] = json::value::boolean(c.fenced);
  v["fenceMode"] = json::value::string(c.fenceMode);
  v["restartOnCrash"] = json::value::boolean(c.restartOnCrash);
  v["handoverOnShutdown"] = json::value::boolean(c.handoverOnShutdown);
  v["lease"] = json::value::string(c.lease);
  v["leaseDurationSeconds"] = json::value::number(c.leaseDurationSeconds);
  v["renewDeadlineSeconds"] = json::value::number(c.renewDeadlineSeconds);
  v["retryPeriodSeconds"] = json::value::number(c.retryPeriodSeconds);
  // Only when they differ from what an agent assumes without them, so that a
  // set configured before they existed keeps its config hash.
  if (!c.maxSlotWalKeepSize.empty()) v["maxSlotWalKeepSize"] = json::value::string(c.maxSlotWalKeepSize);
  if (!c.replicationSlots) v["replicationSlots"] = json::value::boolean(false);
  if (!c.dataChecksums) v["dataChecksums"] = json::value::boolean(false);
  // Only when set, so that a set without backups keeps its config hash.
  if (!c.backupRepositoryPath.empty()) {
    v["backupRepositoryPath"] = json::value::string(c.backupRepositoryPath);
    v["stanza"] = json::value::string(c.stanza);
  }
  if (c.standbyFromRepository) v["standbyFromRepository"] = json::value::boolean(true);
  if (c.restore) {
    json::value r = json::value::object();
    r["repositoryPath"] = json::value::string(c.restore->repositoryPath);
    r["stanza"] = json::value::string(c.restore->stanza);
    r["targetTime"] = json::value::string(c.restore->targetTime);
    r["targetLsn"] = json::value::string(c.restore->targetLsn);
    r["targetName"] = json::value::string(c.restore->targetName);
    r["targetImmediate"] = json::value::boolean(c.restore->targetImmediate);
    if (c.restore->s3) r["s3"] = EncodeS3(*c.restore->s3);
    if (c.restore->encryption) {
      r["encryption"] = json::value::boolean(true);
      r["cipherPass"] = json::value::string(c.restore->cipherPass);
    }
    v["restore"] = r;
  }
  if (c.backupRetentionFull > 0) v["backupRetentionFull"] = json::value::number(c.backupRetentionFull);
  if (c.backupS3) v["backupS3"] = EncodeS3(*c.backupS3);
  if (c.backupEncryption) {
    v["backupEncryption"] = json::value::boolean(true);
    v["backupCipherPass"] = json::value::string(c.backupCipherPass);
  }
  if (c.backupServerPort > 0) v["backupServerPort"] = json::value::number(c.backupServerPort);
  if (c.tls) {
    json::value t = json::value::object();
    t["ca"] = json::value::string(c.tls->ca);
    t["serverCert"] = json::value::string(c.tls->serverCert);
    t["serverKey"] = json::value::string(c.tls->serverKey);
    t["replicationCert"] = json::value::string(c.tls->replicationCert);
    t["replicationKey"] = json::value::string(c.tls->replicationKey);
    v["tls"] = t;
  }
  return v.serialize();
}

Result<AgentConfig> DecodeAgentConfig(const std::string& text) {
  try {
    json::value v = json::value::parse(text);
    if (!v.is_object()) return Status::Invalid("config: not a JSON object");
    AgentConfig c;
    c.role = Str(v, "role");
    if (c.role != "primary" && c.role != "standby") return Status::Invalid("config.role: must be primary or standby");
    c.majorVersion = Int32(v, "majorVersion");
    c.listenAddresses = Str(v, "listenAddresses");
    c.port = Int32(v, "port");
    if (c.port <= 0 || c.port > 65535) return Status::Invalid("config.port: must be between 1 and 65535");
    if (v.has_object_field("parameters")) {
      for (const auto& [k, val] : v.at("parameters").as_object()) {
        if (val.is_string()) c.parameters[k] = val.as_string();
      }
    }
    c.pgHBA = ReadStringList(v, "pgHBA");
    c.clientNetworks = ReadStringList(v, "clientNetworks");
    c.replicationUser = Str(v, "replicationUser");
    c.upstreamHost = Str(v, "upstreamHost");
    c.upstreamPort = Int32(v, "upstreamPort");
    c.slotName = Str(v, "slotName");
    c.synchronousStandbyNames = Str(v, "synchronousStandbyNames");
    c.superuserPassword = Str(v, "superuserPassword");
    c.replicationPassword = Str(v, "replicationPassword");
    c.fenced = Bool(v, "fenced");
    c.fenceMode = Str(v, "fenceMode");
    if (c.fenceMode.empty()) c.fenceMode = "immediate";
    if (c.fenceMode != "immediate" && c.fenceMode != "fast") return Status::Invalid("config.fenceMode: must be immediate or fast");
    c.restartOnCrash = !v.has_boolean_field("restartOnCrash") || v.at("restartOnCrash").as_bool();
    c.handoverOnShutdown = Bool(v, "handoverOnShutdown");
    c.lease = Str(v, "lease");
    if (v.has_number_field("leaseDurationSeconds")) c.leaseDurationSeconds = Int32(v, "leaseDurationSeconds");
    if (v.has_number_field("renewDeadlineSeconds")) c.renewDeadlineSeconds = Int32(v, "renewDeadlineSeconds");
    if (v.has_number_field("retryPeriodSeconds")) c.retryPeriodSeconds = Int32(v, "retryPeriodSeconds");
    c.maxSlotWalKeepSize = Str(v, "maxSlotWalKeepSize");
    c.replicationSlots = !v.has_boolean_field("replicationSlots") || v.at("replicationSlots").as_bool();
    c.dataChecksums = !v.has_boolean_field("dataChecksums") || v.at("dataChecksums").as_bool();
    c.backupRepositoryPath = Str(v, "backupRepositoryPath");
    c.stanza = Str(v, "stanza");
    c.backupRetentionFull = Int32(v, "backupRetentionFull");
    if (c.backupRetentionFull < 0) return Status::Invalid("config.backupRetentionFull: must not be negative");
    if (c.backupRepositoryPath.empty() != c.stanza.empty()) {
      return Status::Invalid("config.stanza: must be set exactly when config.backupRepositoryPath is");
    }
    c.standbyFromRepository = Bool(v, "standbyFromRepository");
    if (v.has_object_field("restore")) {
      const json::value& r = v.at("restore");
      RestoreConfig& restore = c.restore.emplace();
      restore.repositoryPath = Str(r, "repositoryPath");
      restore.stanza = Str(r, "stanza");
      restore.targetTime = Str(r, "targetTime");
      restore.targetLsn = Str(r, "targetLsn");
      restore.targetName = Str(r, "targetName");
      restore.targetImmediate = Bool(r, "targetImmediate");
      if (restore.repositoryPath.empty() || restore.stanza.empty()) {
        return Status::Invalid("config.restore: needs repositoryPath and stanza");
      }
      restore.encryption = Bool(r, "encryption");
      restore.cipherPass = Str(r, "cipherPass");
      if (r.has_object_field("s3")) {
        auto s3 = DecodeS3(r.at("s3"), "config.restore.s3");
        if (!s3.ok()) return s3.status();
        restore.s3 = *s3;
      }
    }
    if (v.has_object_field("backupS3")) {
      auto s3 = DecodeS3(v.at("backupS3"), "config.backupS3");
      if (!s3.ok()) return s3.status();
      c.backupS3 = *s3;
      if (c.backupRepositoryPath.empty()) {
        return Status::Invalid("config.backupS3: needs config.backupRepositoryPath (the path in the bucket)");
      }
    }
    c.backupEncryption = Bool(v, "backupEncryption");
    c.backupCipherPass = Str(v, "backupCipherPass");
    c.backupServerPort = Int32(v, "backupServerPort");
    if (c.backupServerPort < 0 || c.backupServerPort > 65535) {
      return Status::Invalid("config.backupServerPort: must be between 1 and 65535");
    }
    if (v.has_object_field("tls")) {
      const json::value& t = v.at("tls");
      TlsConfig& tls = c.tls.emplace();
      tls.ca = Str(t, "ca");
      tls.serverCert = Str(t, "serverCert");
      tls.serverKey = Str(t, "serverKey");
      tls.replicationCert = Str(t, "replicationCert");
      tls.replicationKey = Str(t, "replicationKey");
      if (tls.ca.empty() || tls.serverCert.empty() || tls.serverKey.empty() || tls.replicationCert.empty() ||
          tls.replicationKey.empty()) {
        return Status::Invalid("config.tls: needs ca, serverCert, serverKey, replicationCert and replicationKey");
      }
    }
    if (c.role == "standby" && (c.upstreamHost.empty() || c.upstreamPort <= 0)) {
      return Status::Invalid("config.upstreamHost: a standby needs an upstream");
    }
    return c;
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("config: ") + e.what());
  }
}

std::string EncodeAgentStatus(const AgentStatus& s) {
  json::value v = json::value::object();
  v["name"] = json::value::string(s.name);
  v["state"] = json::value::string(s.state);
  v["role"] = json::value::string(s.role);
  v["dataDirRole"] = json::value::string(s.dataDirRole);
  v["dataDirExists"] = json::value::boolean(s.dataDirExists);
  v["postgresRunning"] = json::value::boolean(s.postgresRunning);
  v["postgresReady"] = json::value::boolean(s.postgresReady);
  v["postmasterPid"] = json::value::number(s.postmasterPid);
  v["restarts"] = json::value::number(s.restarts);
  v["lastExit"] = json::value::string(s.lastExit);
  v["progress"] = json::value::string(s.progress);
  v["lastError"] = json::value::string(s.lastError);
  v["configHash"] = json::value::string(s.configHash);
  v["majorVersion"] = json::value::number(s.majorVersion);
  v["fenced"] = json::value::boolean(s.fenced);
  v["checkpointLsn"] = json::value::string(std::to_string(s.checkpointLsn));
  v["timeline"] = json::value::number(s.timeline);
  v["lastRenewMs"] = json::value::number(s.lastRenewMs);
  v["shuttingDown"] = json::value::boolean(s.shuttingDown);
  if (s.repository.checkedMs != 0) {
    const RepositoryInfo& r = s.repository;
    json::value repository = json::value::object();
    repository["checkedMs"] = json::value::number(r.checkedMs);
    repository["error"] = json::value::string(r.error);
    repository["archiveMin"] = json::value::string(r.archiveMin);
    repository["archiveMax"] = json::value::string(r.archiveMax);
    repository["postgresVersion"] = json::value::string(r.postgresVersion);
    json::value backups = json::value::array(r.backups.size());
    for (size_t i = 0; i < r.backups.size(); ++i) backups[i] = BackupInfoJson(r.backups[i]);
    repository["backups"] = std::move(backups);
    v["repository"] = std::move(repository);
  }
  return v.serialize();
}

Result<AgentStatus> DecodeAgentStatus(const std::string& text) {
  try {
    json::value v = json::value::parse(text);
    if (!v.is_object()) return Status::Invalid("agent status: not a JSON object");
    AgentStatus s;
    s.name = Str(v, "name");
    s.state = Str(v, "state");
    s.role = Str(v, "role");
    s.dataDirRole = Str(v, "dataDirRole");
    s.dataDirExists = Bool(v, "dataDirExists");
    s.postgresRunning = Bool(v, "postgresRunning");
    s.postgresReady = Bool(v, "postgresReady");
    s.postmasterPid = Int(v, "postmasterPid");
    s.restarts = Int32(v, "restarts");
    s.lastExit = Str(v, "lastExit");
    s.progress = Str(v, "progress");
    s.lastError = Str(v, "lastError");
    s.configHash = Str(v, "configHash");
    s.majorVersion = Int32(v, "majorVersion");
    s.fenced = Bool(v, "fenced");
    s.checkpointLsn = std::strtoull(Str(v, "checkpointLsn").c_str(), nullptr, 10);
    s.timeline = Int32(v, "timeline");
    s.lastRenewMs = Int(v, "lastRenewMs");
    s.shuttingDown = Bool(v, "shuttingDown");
    if (v.has_object_field("repository")) {
      const json::value& r = v.at("repository");
      s.repository.checkedMs = Int(r, "checkedMs");
      s.repository.error = Str(r, "error");
      s.repository.archiveMin = Str(r, "archiveMin");
      s.repository.archiveMax = Str(r, "archiveMax");
      s.repository.postgresVersion = Str(r, "postgresVersion");
      if (r.has_array_field("backups")) {
        for (const auto& item : r.at("backups").as_array()) s.repository.backups.push_back(ReadBackupInfo(item));
      }
    }
    return s;
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("agent status: ") + e.what());
  }
}

std::string EncodeBackupRequest(const BackupRequest& r) {
  json::value v = json::value::object();
  v["id"] = json::value::string(r.id);
  v["type"] = json::value::string(r.type);
  if (!r.standbyHost.empty()) {
    v["standby"] = json::value::string(r.standby);
    v["standbyHost"] = json::value::string(r.standbyHost);
    v["standbyServerPort"] = json::value::number(r.standbyServerPort);
    v["standbyPort"] = json::value::number(r.standbyPort);
  }
  return v.serialize();
}

Result<BackupRequest> DecodeBackupRequest(const std::string& text) {
  try {
    json::value v = json::value::parse(text);
    if (!v.is_object()) return Status::Invalid("backup request: not a JSON object");
    BackupRequest r;
    r.id = Str(v, "id");
    r.type = Str(v, "type");
    if (r.id.empty()) return Status::Invalid("backup request: id: required");
    r.standby = Str(v, "standby");
    r.standbyHost = Str(v, "standbyHost");
    r.standbyServerPort = Int32(v, "standbyServerPort");
    r.standbyPort = Int32(v, "standbyPort");
    if (!r.standbyHost.empty() && (r.standbyServerPort <= 0 || r.standbyServerPort > 65535 || r.standbyPort <= 0 ||
                                   r.standbyPort > 65535)) {
      return Status::Invalid("backup request: standbyServerPort and standbyPort: must be between 1 and 65535");
    }
    if (!ValidBackupType(r.type)) {
      return Status::Invalid("backup request: type: must be full, diff or incr (not \"" + r.type + "\")");
    }
    return r;
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("backup request: ") + e.what());
  }
}

std::string EncodeBackupJob(const BackupJob& j) {
  json::value v = json::value::object();
  v["id"] = json::value::string(j.id);
  v["type"] = json::value::string(j.type);
  v["state"] = json::value::string(j.state);
  v["label"] = json::value::string(j.label);
  v["error"] = json::value::string(j.error);
  v["progress"] = json::value::string(j.progress);
  v["startedMs"] = json::value::number(j.startedMs);
  v["finishedMs"] = json::value::number(j.finishedMs);
  if (j.backup) v["backup"] = BackupInfoJson(*j.backup);
  return v.serialize();
}

Result<BackupJob> DecodeBackupJob(const std::string& text) {
  try {
    json::value v = json::value::parse(text);
    if (!v.is_object()) return Status::Invalid("backup job: not a JSON object");
    BackupJob j;
    j.id = Str(v, "id");
    j.type = Str(v, "type");
    j.state = Str(v, "state");
    j.label = Str(v, "label");
    j.error = Str(v, "error");
    j.progress = Str(v, "progress");
    j.startedMs = Int(v, "startedMs");
    j.finishedMs = Int(v, "finishedMs");
    if (v.has_object_field("backup")) j.backup = ReadBackupInfo(v.at("backup"));
    return j;
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("backup job: ") + e.what());
  }
}

std::string ConfigHash(const AgentConfig& config) {
  std::string text = EncodeAgentConfig(config);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < 16 && i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", digest[i]);
    out += buf;
  }
  return out;
}

}  // namespace pgrs::agent
