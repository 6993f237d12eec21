#include "operator/agent/promote.h"

#include <chrono>
#include <thread>

#include "operator/agent/postmaster.h"
#include "operator/postgres/config.h"
#include "operator/pq/pq.h"
#include "operator/util/log.h"
#include "operator/util/process.h"

namespace pgrs::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

Status PromoteWithPgPromote(const InstanceLayout& layout, const AgentConfig& config) {
  auto conn = pq::Connection::Open(LocalParams(layout, config));
  if (!conn.ok()) return Status::Unavailable("promote: " + conn.status().message());
  // pg_promote(wait => true) looks every 100 ms; asking ourselves every
  // 10 ms shortens the unavailability by tens of milliseconds.
  auto rows = (*conn)->Query("SELECT pg_promote(false)");
  if (!rows.ok()) return Status::Unavailable("pg_promote: " + rows.status().message());
  auto deadline = Clock::now() + 60s;
  while (true) {
    auto inRecovery = (*conn)->Query("SELECT pg_is_in_recovery()");
    if (!inRecovery.ok()) return Status::Unavailable("promote: " + inRecovery.status().message());
    if (!inRecovery->empty() && (*inRecovery)[0][0] == std::optional<std::string>("f")) return Status::Ok();
    if (Clock::now() >= deadline) return Status::Unavailable("promotion did not complete within 60s");
    std::this_thread::sleep_for(10ms);
  }
}

Status PromoteWithPgCtl(const InstanceLayout& layout, const AgentConfig& config) {
  ProcessSpec spec =
      layout.PostgresProgram(config.majorVersion, "pg_ctl", {"promote", "-w", "-t", "60", "-D", layout.DataDir()});
  auto result = RunCommand(spec, 90s);
  if (!result.ok() || !result->ok()) {
    return Status::Unavailable("pg_ctl promote failed: " + (result.ok() ? result->output : result.status().message()));
  }
  return Status::Ok();
}

}  // namespace

Status PromoteStandby(const InstanceLayout& layout, const AgentConfig& config) {
  auto started = Clock::now();
  PGRS_RETURN_IF_ERROR(postgres::HasPgPromote(config.majorVersion) ? PromoteWithPgPromote(layout, config)
                                                                    : PromoteWithPgCtl(layout, config));
  std::string lsn, timeline;
  if (auto conn = pq::Connection::Open(LocalParams(layout, config)); conn.ok()) {
    // Writes the new timeline into the control file at once (pg_rewind of
    // the old primary reads it there).
    (*conn)->Exec("CHECKPOINT").ok();
    auto rows = (*conn)->Query(
        "SELECT pg_current_wal_lsn()::text, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int");
    if (rows.ok() && !rows->empty()) {
      lsn = (*rows)[0][0].value_or("");
      timeline = (*rows)[0][1].value_or("");
    }
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  spdlog::info("promoted instance={} lsn={} timeline={} tookMs={}", layout.name, lsn, timeline, ms);
  return Status::Ok();
}

}  // namespace pgrs::agent
