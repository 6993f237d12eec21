#include "operator/agent/rejoin.h"

#include <chrono>
#include <string_view>

#include "operator/agent/configuration.h"
#include "operator/postgres/config.h"
#include "operator/pq/pq.h"
#include "operator/util/files.h"
#include "operator/util/log.h"
#include "operator/util/process.h"

namespace pgrs::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool RewindSourceUnreachable(const std::string& output) {
  for (const char* transient : {"could not connect", "server closed the connection", "connection to server",
                                "timeout expired", "the database system is"}) {
    if (output.find(transient) != std::string::npos) return true;
  }
  return false;
}

Status Rewind(const InstanceLayout& layout, const AgentConfig& config,
              const std::function<void(const std::string&)>& onProgress) {
  spdlog::info("rewinding instance={} source={}:{}", layout.name, config.upstreamHost, config.upstreamPort);
  {
    // pg_rewind reads the source's timeline from its control file, which a
    // just-promoted server updates only at its next checkpoint: without
    // this, pg_rewind may see no divergence and leave the target unusable.
    pq::ConnectionParams source;
    source.host = config.upstreamHost;
    source.port = config.upstreamPort;
    source.password = config.superuserPassword;
    source.applicationName = "pgrs-rewind";
    if (config.tls) source.sslRootCert = layout.TlsCaFile();
    auto conn = pq::Connection::Open(source);
    if (!conn.ok()) return Status::Unavailable("rewind source: " + conn.status().message());
    PGRS_RETURN_IF_ERROR((*conn)->Exec("CHECKPOINT"));
  }
  std::string passfile = layout.SuperuserPassfile();
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(passfile, PassfileLine("postgres", config.superuserPassword)));
  ProcessSpec spec = layout.PostgresProgram(
      config.majorVersion, "pg_rewind",
      {"--target-pgdata=" + layout.DataDir(),
       "--source-server=host=" + postgres::QuoteConnInfoValue(config.upstreamHost) +
           " port=" + std::to_string(config.upstreamPort) +
           " user=postgres dbname=postgres connect_timeout=5 passfile=" + postgres::QuoteConnInfoValue(passfile) +
           (config.tls ? " sslmode=verify-full sslrootcert=" + postgres::QuoteConnInfoValue(layout.TlsCaFile()) : ""),
       "--progress"});
  spec.env = {"LC_ALL=C.UTF-8"};
  spec.workingDir = layout.instanceDir;
  auto started = Clock::now();
  auto result = RunCommand(spec, 1h, [&](const std::string& line) {
    if (line.find("kB") != std::string::npos || line.find("rewind") != std::string::npos) onProgress(line);
  });
  ::unlink(passfile.c_str());  // the superuser's password stays on disk no longer than pg_rewind runs
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  if (!result.ok() || !result->ok()) {
    std::string why = result.ok() ? result->output : result.status().message();
    if (why.size() > 600) why = why.substr(why.size() - 600);
    if (RewindSourceUnreachable(why)) {
      spdlog::warn("rewind could not reach its source instance={} tookMs={}; retrying output=\"{}\"", layout.name,
                   ms, why);
      return Status::Unavailable("pg_rewind could not reach " + config.upstreamHost + ":" +
                                 std::to_string(config.upstreamPort));
    }
    spdlog::warn("rewind failed instance={} tookMs={}; re-cloning output=\"{}\"", layout.name, ms, why);
    // It must be re-cloned: its data directory is deleted for that.
    PGRS_RETURN_IF_ERROR(RemoveTree(layout.DataDir()));
    return Status::Ok();  // the next tick clones it
  }
  spdlog::info("rewound instance={} tookMs={}", layout.name, ms);
  // Mark it a standby at once, before anything can start it.
  auto written = WriteConfiguration(layout, config);
  if (!written.ok()) return written.status();
  return Status::Ok();
}

std::string RecoveryCannotContinueSign(const std::string& freshLog, bool archived) {
  for (const char* sign : {"before current recovery point", "does not contain minimum recovery point",
                           "is not a child of this server's history", "could not locate a valid checkpoint record",
                           kWalRemovedSign}) {
    if (archived && std::string_view(sign) == kWalRemovedSign) continue;
    if (freshLog.find(sign) != std::string::npos) return sign;
  }
  return "";
}

void RecoveryWatch::SkipExisting() {
  if (auto log = ReadFile(layout_.PostgresLog()); log.ok()) offset_ = log->size();
}

std::string RecoveryWatch::CannotContinue(bool archived) {
  auto text = ReadFile(layout_.PostgresLog());
  if (!text.ok()) return "";
  if (text->size() < offset_) offset_ = 0;  // the log was replaced
  std::string fresh = text->substr(offset_);
  offset_ = text->size();
  std::string sign = RecoveryCannotContinueSign(fresh, archived);
  if (!sign.empty()) spdlog::warn("standby cannot continue recovery instance={} sign=\"{}\"", layout_.name, sign);
  return sign;
}

}  // namespace pgrs::agent
