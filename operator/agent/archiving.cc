#include "operator/agent/archiving.h"

#include <signal.h>
#include <unistd.h>

#include <cpprest/json.h>

#include "operator/postgres/pgbackrest.h"
#include "operator/util/files.h"
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

Status MakePostgresDir(const InstanceLayout& layout, const std::string& path) {
  if (!IsDirectory(path)) {
    PGRS_RETURN_IF_ERROR(MakeDirs(path, 0700));
    PGRS_RETURN_IF_ERROR(ChownPath(path, layout.postgresUser.uid, layout.postgresUser.gid));
  }
  return Status::Ok();
}

}  // namespace

postgres::PgBackRestRepository PgBackRestRepositoryOf(const InstanceLayout& layout, const AgentConfig& config) {
  postgres::PgBackRestRepository r;
  r.path = config.backupRepositoryPath;
  if (const auto& s3 = config.backupS3) {
    postgres::S3Repository& o = r.s3.emplace();
    o.endpoint = s3->endpoint;
    o.port = s3->port;
    o.bucket = s3->bucket;
    o.region = s3->region;
    o.uriStyle = s3->uriStyle;
    o.verifyTLS = s3->verifyTLS;
    if (!s3->ca.empty()) o.caFile = layout.PgBackRestCaFile();
    o.key = s3->key;
    o.keySecret = s3->keySecret;
  }
  return r;
}

std::string RepositoryKey(const AgentConfig& config) {
  std::string key = config.backupRepositoryPath;
  if (config.backupS3) key = "s3://" + config.backupS3->endpoint + "/" + config.backupS3->bucket + key;
  return key;
}

Status WritePgBackRestConfiguration(const InstanceLayout& layout, const AgentConfig& config) {
  postgres::PgBackRestConfig pc;
  pc.stanza = config.stanza;
  pc.repository = PgBackRestRepositoryOf(layout, config);
  pc.dataDir = layout.DataDir();
  pc.port = config.port;
  pc.spoolPath = JoinPath(layout.PgBackRestDir(), "spool");
  pc.lockPath = JoinPath(layout.PgBackRestDir(), "lock");
  pc.logPath = JoinPath(layout.PgBackRestDir(), "log");
  for (const std::string& dir : {layout.PgBackRestDir(), pc.spoolPath, pc.lockPath, pc.logPath}) {
    PGRS_RETURN_IF_ERROR(MakePostgresDir(layout, dir));
  }
  // pgBackRest makes the repository's own subdirectories, not the repository.
  if (!config.backupS3) {
    PGRS_RETURN_IF_ERROR(MakePostgresDir(layout, config.backupRepositoryPath)
                             .WithContext("spec.backup.repository.path " + config.backupRepositoryPath));
  }
  std::vector<std::pair<std::string, std::string>> files = {
      {layout.PgBackRestConfigFile(), postgres::GeneratePgBackRestConfig(pc)},
      {layout.PgBackRestPassfile(), PassfileLine("postgres", config.superuserPassword)},
  };
  // The CA bundle is copied here: the PostgreSQL user may not be able to
  // read the file (or Secret) it came from.
  if (!pc.repository.s3 || pc.repository.s3->caFile.empty()) {
    ::unlink(layout.PgBackRestCaFile().c_str());
  } else {
    files.emplace_back(layout.PgBackRestCaFile(), config.backupS3->ca);
  }
  for (const auto& [path, content] : files) {
    auto current = ReadFile(path);
    if (current.ok() && *current == content && HasMode(path, 0600)) continue;
    PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(path, content));
  }
  return Status::Ok();
}

ProcessSpec PgBackRestProgram(const InstanceLayout& layout, const std::string& host, const std::string& stanza,
                              std::vector<std::string> args) {
  ProcessSpec spec;
  spec.argv = {layout.pgbackrest, "--config=" + layout.PgBackRestConfigFile(), "--stanza=" + stanza};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = postgres::PgBackRestEnvironment(host, layout.PgBackRestPassfile());
  spec.workingDir = layout.PgBackRestDir();
  if (RunningAsRoot()) spec.runAs = layout.postgresUser;
  return spec;
}

Result<std::string> NewestBackupLabel(const std::string& infoJson, const std::string& stanza) {
  try {
    web::json::value info = web::json::value::parse(infoJson);
    if (!info.is_array()) return Status::Invalid("pgbackrest info: not a JSON array");
    for (const auto& entry : info.as_array()) {
      if (!entry.has_string_field("name") || entry.at("name").as_string() != stanza) continue;
      std::string label;
      if (entry.has_array_field("backup")) {
        for (const auto& backup : entry.at("backup").as_array()) {
          // Listed oldest first; the last one is the newest.
          if (backup.has_string_field("label")) label = backup.at("label").as_string();
        }
      }
      if (label.empty()) return Status::NotFound("stanza " + stanza + " has no backup");
      return label;
    }
    return Status::NotFound("stanza " + stanza + " is not in the repository");
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("pgbackrest info: ") + e.what());
  }
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
  ProcessSpec spec = PgBackRestProgram(layout_, host, config.stanza, {"stanza-create"});
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
