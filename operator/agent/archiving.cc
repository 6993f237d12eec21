#include "operator/agent/archiving.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpprest/json.h>

#include "operator/postgres/pgbackrest.h"
#include "operator/util/files.h"
#include "operator/util/json.h"
#include "operator/util/log.h"

namespace pgrs::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string StanzaCreateOutput(const InstanceLayout& layout) {
  return JoinPath(layout.PgBackRestDir(), "stanza-create.out");
}

// The tail of a command's output: pgBackRest's ERROR line comes last.
std::string Tail(const std::string& text, size_t max = 1000) {
  std::string out = text.size() > max ? text.substr(text.size() - max) : text;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

postgres::PgBackRestRepository PgBackRestRepositoryFor(const std::string& path,
                                                       const std::optional<S3RepositoryConfig>& s3,
                                                       const std::string& caFile, const std::string& cipherPass) {
  postgres::PgBackRestRepository r;
  r.path = path;
  r.cipherPass = cipherPass;
  if (s3) {
    postgres::S3Repository& o = r.s3.emplace();
    o.endpoint = s3->endpoint;
    o.port = s3->port;
    o.bucket = s3->bucket;
    o.region = s3->region;
    o.uriStyle = s3->uriStyle;
    o.verifyTLS = s3->verifyTLS;
    if (!s3->ca.empty()) o.caFile = caFile;
    o.key = s3->key;
    o.keySecret = s3->keySecret;
  }
  return r;
}

postgres::PgBackRestRepository PgBackRestRepositoryOf(const InstanceLayout& layout, const AgentConfig& config) {
  return PgBackRestRepositoryFor(config.backupRepositoryPath, config.backupS3, layout.PgBackRestCaFile(),
                                 config.backupEncryption ? config.backupCipherPass : "");
}

std::string RepositoryName(const std::string& path, const std::optional<S3RepositoryConfig>& s3) {
  return s3 ? "s3://" + s3->endpoint + "/" + s3->bucket + path : path;
}

postgres::PgBackRestConfig PgBackRestConfigFor(const InstanceLayout& layout, int port, const std::string& stanza,
                                               const postgres::PgBackRestRepository& repository) {
  postgres::PgBackRestConfig pc;
  pc.stanza = stanza;
  pc.repository = repository;
  pc.dataDir = layout.DataDir();
  pc.port = port;
  pc.spoolPath = JoinPath(layout.PgBackRestDir(), "spool");
  pc.lockPath = JoinPath(layout.PgBackRestDir(), "lock");
  pc.logPath = JoinPath(layout.PgBackRestDir(), "log");
  return pc;
}

Status WritePgBackRestConfigFile(const InstanceLayout& layout, const std::string& path,
                                 const postgres::PgBackRestConfig& pc) {
  for (const std::string& dir : {layout.PgBackRestDir(), pc.spoolPath, pc.lockPath, pc.logPath}) {
    PGRS_RETURN_IF_ERROR(layout.MakePostgresDir(dir));
  }
  return layout.WritePostgresFileIfChanged(path, postgres::GeneratePgBackRestConfig(pc));
}

Status WritePgBackRestConfiguration(const InstanceLayout& layout, const AgentConfig& config) {
  if (config.backupEncryption && config.backupCipherPass.empty()) {
    return Status::Invalid("spec.backup.encryption: no passphrase reached the agent; the repository is not written "
                           "unencrypted");
  }
  auto pc = PgBackRestConfigFor(layout, config.port, config.stanza, PgBackRestRepositoryOf(layout, config));
  pc.retentionFull = config.backupRetentionFull;
  if (config.tls && config.backupServerPort > 0) {
    pc.tlsServer = postgres::PgBackRestConfig::TlsServer{
        BackupServerAddress(config), config.backupServerPort, layout.TlsServerCertFile(),
        layout.TlsServerKeyFile(), layout.TlsCaFile(), config.replicationUser};
  }
  PGRS_RETURN_IF_ERROR(WritePgBackRestConfigFile(layout, layout.PgBackRestConfigFile(), pc));
  // pgBackRest makes a POSIX repository's own subdirectories, not the repository.
  if (!config.backupS3) {
    PGRS_RETURN_IF_ERROR(layout.MakePostgresDir(config.backupRepositoryPath)
                             .WithContext("spec.backup.repository.path " + config.backupRepositoryPath));
  }
  // The CA bundle is copied here: the PostgreSQL user may not be able to
  // read the file (or Secret) it came from.
  if (!pc.repository.s3 || pc.repository.s3->caFile.empty()) {
    ::unlink(layout.PgBackRestCaFile().c_str());
  } else {
    PGRS_RETURN_IF_ERROR(layout.WritePostgresFileIfChanged(layout.PgBackRestCaFile(), config.backupS3->ca));
  }
  return layout.WritePostgresFileIfChanged(layout.PgBackRestPassfile(),
                                    PassfileLine("postgres", config.superuserPassword));
}

ProcessSpec PgBackRestProgram(const InstanceLayout& layout, const std::string& host, const std::string& stanza,
                              std::vector<std::string> args) {
  ProcessSpec spec;
  spec.argv = {layout.pgbackrest, "--config=" + layout.PgBackRestConfigFile()};
  if (!stanza.empty()) spec.argv.push_back("--stanza=" + stanza);  // `server` takes none
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  // The CA file is there exactly while TLS is on (WriteTlsFiles).
  spec.env = postgres::PgBackRestEnvironment(host, layout.PgBackRestPassfile(),
                                             PathExists(layout.TlsCaFile()) ? layout.TlsCaFile() : "");
  spec.workingDir = layout.PgBackRestDir();
  if (RunningAsRoot()) spec.runAs = layout.postgresUser;
  return spec;
}

namespace {

using web::json::value;

std::string JsonString(const value& v, const char* key) {
  return v.has_string_field(key) ? v.at(key).as_string() : std::string();
}
// 0 when absent or no integer (pgbackrest info writes integers).
int64_t JsonInt(const value& v, const char* key) {
  return v.has_number_field(key) ? JsonInt64(v.at(key)).value_or(0) : 0;
}
const value& JsonObject(const value& v, const char* key) {
  static const value empty = value::object();
  return v.has_object_field(key) ? v.at(key) : empty;
}

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// pgBackRest's stanza status codes that still mean "the repository answers".
constexpr int64_t kInfoOk = 0;
constexpr int64_t kInfoNoValidBackups = 2;

}  // namespace

namespace {

// Line breaks and tabs become spaces, other bytes outside printable ASCII '?'.
std::string AsciiText(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    } else if (byte < 0x20 || byte >= 0x7f) {
      c = '?';
    }
  }
  return out;
}

}  // namespace

std::string PrintableMessage(const std::string& text) {
  std::string out = AsciiText(text);
  return out.size() > 600 ? out.substr(0, 600) + "..." : out;
}

Result<RepositoryInfo> ParseBackupInfo(const std::string& infoJson, const std::string& stanza) {
  try {
    // pgBackRest quotes unreadable files' raw bytes inside its JSON strings
    // (control characters, invalid UTF-8): not JSON until they are replaced.
    value info = value::parse(AsciiText(infoJson));
    if (!info.is_array()) return Status::Invalid("pgbackrest info: not a JSON array");
    for (const auto& entry : info.as_array()) {
      if (JsonString(entry, "name") != stanza) continue;
      RepositoryInfo out;
      const value& status = JsonObject(entry, "status");
      const int64_t code = JsonInt(status, "code");
      if (code != kInfoOk && code != kInfoNoValidBackups) {
        // "other" says nothing: the repository's own status says what failed.
        std::string message = JsonString(status, "message");
        if (message == "other" && entry.has_array_field("repo")) {
          for (const auto& repo : entry.at("repo").as_array()) {
            const std::string detail = JsonString(JsonObject(repo, "status"), "message");
            if (!detail.empty()) message = detail;
          }
        }
        out.error = "pgbackrest info: stanza " + stanza + ": " + PrintableMessage(message);
      }
      if (entry.has_array_field("backup")) {
        for (const auto& backup : entry.at("backup").as_array()) {  // oldest first
          BackupInfo b;
          b.label = JsonString(backup, "label");
          if (b.label.empty()) continue;
          b.type = JsonString(backup, "type");
          b.startTime = JsonInt(JsonObject(backup, "timestamp"), "start");
          b.stopTime = JsonInt(JsonObject(backup, "timestamp"), "stop");
          b.startLsn = JsonString(JsonObject(backup, "lsn"), "start");
          b.stopLsn = JsonString(JsonObject(backup, "lsn"), "stop");
          const value& sizes = JsonObject(backup, "info");
          b.databaseSize = JsonInt(sizes, "size");
          b.repositorySize = JsonInt(JsonObject(sizes, "repository"), "delta");
          out.backups.push_back(std::move(b));
        }
      }
      if (entry.has_array_field("db")) {
        for (const auto& db : entry.at("db").as_array()) out.postgresVersion = JsonString(db, "version");
      }
      if (entry.has_array_field("archive")) {
        // One entry per database history (a stanza-upgrade adds one); the
        // last is the current one.
        for (const auto& archive : entry.at("archive").as_array()) {
          out.archiveMin = JsonString(archive, "min");
          out.archiveMax = JsonString(archive, "max");
        }
      }
      return out;
    }
    return Status::NotFound("stanza " + stanza + " is not in the repository");
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("pgbackrest info: ") + e.what());
  }
}

Result<BackupInfo> NewestBackup(const std::string& infoJson, const std::string& stanza) {
  auto info = ParseBackupInfo(infoJson, stanza);
  if (!info.ok()) return info.status();
  if (info->backups.empty()) return Status::NotFound("stanza " + stanza + " has no backup");
  return info->backups.back();
}

Result<std::string> NewestBackupLabel(const std::string& infoJson, const std::string& stanza) {
  auto newest = NewestBackup(infoJson, stanza);
  if (!newest.ok()) return newest.status();
  return newest->label;
}

ProcessSpec PgBackRestInfoProgram(const InstanceLayout& layout, const std::string& host, const std::string& stanza) {
  return PgBackRestProgram(layout, host, stanza,
                           {"--log-level-console=off", "--log-level-stderr=error", "info", "--output=json"});
}

RepositoryWatcher::~RepositoryWatcher() { Reset(); }

void RepositoryWatcher::Reset() {
  if (child_ > 0) StopChild(child_, SIGTERM, 5s);
  child_ = 0;
  info_ = RepositoryInfo{};
  infoFor_.clear();
  backupInfoMtimeNs_ = -1;
  nextRun_ = {};
}

void RepositoryWatcher::Poll(const AgentConfig& config, const std::string& host) {
  const std::string key = config.backupRepositoryPath + "\n" + config.stanza;
  if (child_ > 0) {
    if (auto waitStatus = TryReap(child_)) Reap(*waitStatus);
    return;
  }
  if (infoFor_ != key) {
    info_ = RepositoryInfo{};
    nextRun_ = {};
  }
  // A finished backup or expire rewrites backup.info: read again now rather
  // than up to kInterval later.
  struct stat st {};
  const std::string backupInfo = JoinPath(config.backupRepositoryPath, "backup/" + config.stanza + "/backup.info");
  const int64_t mtimeNs = ::stat(backupInfo.c_str(), &st) == 0
                              ? int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec : 0;
  if (mtimeNs != backupInfoMtimeNs_) nextRun_ = {};
  if (Clock::now() < nextRun_) return;
  ProcessSpec spec = PgBackRestInfoProgram(layout_, host, config.stanza);
  spec.outputFile = JoinPath(layout_.PgBackRestDir(), "info.out");
  ::unlink(spec.outputFile.c_str());
  backupInfoMtimeNs_ = mtimeNs;
  nextRun_ = Clock::now() + kInterval;
  auto pid = SpawnProcess(spec);
  if (!pid.ok()) {
    info_.error = "pgbackrest info: " + pid.status().message();
    info_.checkedMs = SystemNowMs();
    infoFor_ = key;
    return;
  }
  child_ = *pid;
  runningFor_ = key;
}

void RepositoryWatcher::Reap(int waitStatus) {
  child_ = 0;
  auto output = ReadFile(JoinPath(layout_.PgBackRestDir(), "info.out"));
  const std::string text = output.ok() ? *output : std::string();
  RepositoryInfo next = infoFor_ == runningFor_ ? info_ : RepositoryInfo{};
  if (WIFEXITED(waitStatus) && WEXITSTATUS(waitStatus) == 0) {
    const std::string stanza = runningFor_.substr(runningFor_.find('\n') + 1);
    auto parsed = ParseBackupInfo(text, stanza);
    if (parsed.ok()) {
      next = std::move(*parsed);
    } else {
      next.error = parsed.status().message();
    }
  } else {
    next.error = "pgbackrest info " + DescribeWaitStatus(waitStatus) + ": " + Tail(text);
  }
  next.checkedMs = SystemNowMs();
  if (next.error != info_.error && !next.error.empty()) {
    spdlog::warn("pgbackrest info failed instance={} error={}", layout_.name, next.error);
  }
  info_ = std::move(next);
  infoFor_ = runningFor_;
}

std::string BackupServerAddress(const AgentConfig& config) {
  const std::string first = config.listenAddresses.substr(0, config.listenAddresses.find(','));
  return first.empty() ? "*" : first;
}

BackupServer::~BackupServer() { Stop(); }

void BackupServer::Stop() {
  if (child_ > 0) StopChild(child_, SIGTERM, 5s);
  child_ = 0;
  runningFor_.clear();
}

void BackupServer::Poll(const AgentConfig& config, const std::string& host, bool postgresRunning) {
  const bool wanted = postgresRunning && config.tls && config.backupServerPort > 0 && BackupConfigured(config);
  // Started again when its certificate or address changes: it reads them
  // once, at start.
  const std::string key = wanted ? BackupServerAddress(config) + ":" + std::to_string(config.backupServerPort) +
                                       "\n" + config.stanza + "\n" + config.tls->serverCert + config.tls->ca
                                 : "";
  if (child_ > 0) {
    if (auto waitStatus = TryReap(child_)) {
      child_ = 0;
      auto output = ReadFile(JoinPath(layout_.PgBackRestDir(), "server.out"));
      error_ = "pgbackrest server " + DescribeWaitStatus(*waitStatus) + ": " + Tail(output.ok() ? *output : "");
      spdlog::warn("pgbackrest server exited instance={} error=\"{}\"", layout_.name, error_);
      retryAfter_ = Clock::now() + 2s;
    } else if (key == runningFor_) {
      return;
    } else {
      Stop();
    }
  }
  if (!wanted || Clock::now() < retryAfter_) return;
  ProcessSpec spec = PgBackRestProgram(layout_, host, "", {"server"});
  spec.outputFile = JoinPath(layout_.PgBackRestDir(), "server.out");
  auto pid = SpawnProcess(spec);
  if (!pid.ok()) {
    error_ = "pgbackrest server: " + pid.status().message();
    retryAfter_ = Clock::now() + 5s;
    return;
  }
  child_ = *pid;
  runningFor_ = key;
  error_.clear();
  spdlog::info("pgbackrest server started instance={} address={}:{} pid={}", layout_.name,
               BackupServerAddress(config), config.backupServerPort, child_);
}

StanzaCreator::~StanzaCreator() {
  if (child_ > 0) StopChild(child_, SIGTERM, 5s);
}

void StanzaCreator::Poll(const AgentConfig& config, const std::string& host) {
  const std::string key = RepositoryKey(config) + "\n" + config.stanza;
  if (child_ > 0) {
    if (auto waitStatus = TryReap(child_)) Reap(*waitStatus);
    return;
  }
  if (createdFor_ == key || Clock::now() < retryAfter_) return;
  // Its own lock directory: stanza-create takes the stanza's archive lock,
  // and an archive-push that meets it gives up without a word, leaving
  // PostgreSQL's archive_command to wait its archive-timeout (60 s) — right
  // after a promotion, when the new primary pushes its .history file.
  ProcessSpec spec = PgBackRestProgram(layout_, host, config.stanza,
                                       {"--lock-path=" + JoinPath(layout_.PgBackRestDir(), "lock-stanza-create"),
                                        "stanza-create"});
  spec.outputFile = StanzaCreateOutput(layout_);
  ::unlink(spec.outputFile.c_str());
  auto pid = SpawnProcess(spec);
  if (!pid.ok()) {
    error_ = "pgbackrest stanza-create: " + pid.status().message();
    retryAfter_ = Clock::now() + 10s;
    return;
  }
  child_ = *pid;
  runningFor_ = key;
}

void StanzaCreator::Reap(int waitStatus) {
  child_ = 0;
  if (WIFEXITED(waitStatus) && WEXITSTATUS(waitStatus) == 0) {
    createdFor_ = runningFor_;
    justCreated_ = true;
    error_.clear();
    spdlog::info("created pgbackrest stanza instance={} stanza={}", layout_.name,
                 runningFor_.substr(runningFor_.find('\n') + 1));
    return;
  }
  auto output = ReadFile(StanzaCreateOutput(layout_));
  error_ = "pgbackrest stanza-create " + DescribeWaitStatus(waitStatus) + ": " +
           Tail(output.ok() ? *output : std::string());
  retryAfter_ = Clock::now() + 10s;
}

}  // namespace pgrs::agent
