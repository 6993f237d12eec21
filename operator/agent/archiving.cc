#include "operator/agent/archiving.h"

#include <signal.h>

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

Status WritePostgresFileIfChanged(const InstanceLayout& layout, const std::string& path, const std::string& content) {
  auto current = ReadFile(path);
  if (current.ok() && *current == content && HasMode(path, 0600)) return Status::Ok();
  return layout.WritePostgresFile(path, content);
}

}  // namespace

postgres::PgBackRestConfig PgBackRestConfigFor(const InstanceLayout& layout, int port, const std::string& stanza,
                                               const std::string& repositoryPath) {
  postgres::PgBackRestConfig pc;
  pc.stanza = stanza;
  pc.repositoryPath = repositoryPath;
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
    PGRS_RETURN_IF_ERROR(MakePostgresDir(layout, dir));
  }
  return WritePostgresFileIfChanged(layout, path, postgres::GeneratePgBackRestConfig(pc));
}

Status WritePgBackRestConfiguration(const InstanceLayout& layout, const AgentConfig& config) {
  auto pc = PgBackRestConfigFor(layout, config.port, config.stanza, config.backupRepositoryPath);
  PGRS_RETURN_IF_ERROR(WritePgBackRestConfigFile(layout, layout.PgBackRestConfigFile(), pc));
  // pgBackRest makes the repository's own subdirectories, not the repository.
  PGRS_RETURN_IF_ERROR(MakePostgresDir(layout, config.backupRepositoryPath)
                           .WithContext("spec.backup.repository.path " + config.backupRepositoryPath));
  return WritePostgresFileIfChanged(layout, layout.PgBackRestPassfile(),
                                    PassfileLine("postgres", config.superuserPassword));
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
  const std::string key = config.backupRepositoryPath + "\n" + config.stanza;
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
