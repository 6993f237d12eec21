#include "operator/observer/observer.h"

#include <algorithm>
#include <future>
#include <map>
#include <mutex>

#include "operator/agent/protocol.h"
#include "operator/pq/pq.h"
#include "operator/util/http.h"
#include "reconcilers/replicaset.h"

namespace pgrs::observer {

using namespace std::chrono_literals;
using reconcilers::ObservedInstance;

namespace {

uint64_t U64(const std::optional<std::string>& v) { return v ? std::strtoull(v->c_str(), nullptr, 10) : 0; }
bool True(const std::optional<std::string>& v) { return v && *v == "t"; }

// Returns false when the connection failed (so it is not reused).
bool ObservePostgres(ObservedInstance& out, pq::Connection& conn) {
  auto rows = conn.Query(
      "SELECT pg_is_in_recovery(), "
      "CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text END, "
      "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::text, "
      "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::text, "
      "CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint()) "
      "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, "
      "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolreplication)",
      {reconcilers::kReplicationUser});
  if (!rows.ok() || rows->empty()) {
    out.pgError = rows.ok() ? "no rows" : rows.status().message();
    return false;
  }
  const auto& r = (*rows)[0];
  out.pgReachable = true;
  out.inRecovery = True(r[0]);
  out.currentLsn = U64(r[1]);
  out.receiveLsn = U64(r[2]);
  out.replayLsn = U64(r[3]);
  out.timeline = r[4] ? std::atoi(r[4]->c_str()) : 0;
  out.replicationRoleExists = True(r[5]);

  if (out.inRecovery) {
    auto wr = conn.Query("SELECT status, received_tli, sender_host, sender_port FROM pg_stat_wal_receiver");
    if (wr.ok() && !wr->empty()) {
      const auto& w = (*wr)[0];
      out.walReceiverStreaming = w[0] && *w[0] == "streaming";
      if (w[1]) out.timeline = std::max(out.timeline, std::atoi(w[1]->c_str()));
      out.upstreamHost = w[2].value_or("");
      out.upstreamPort = w[3] ? std::atoi(w[3]->c_str()) : 0;
    }
  } else {
    auto rep = conn.Query(
        "SELECT application_name, state, COALESCE(sync_state, ''), "
        "COALESCE(pg_wal_lsn_diff(sent_lsn, '0/0'), 0)::text, COALESCE(pg_wal_lsn_diff(flush_lsn, '0/0'), 0)::text, "
        "COALESCE(pg_wal_lsn_diff(replay_lsn, '0/0'), 0)::text, "
        "COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint, "
        "COALESCE(extract(epoch FROM replay_lag), 0)::float8 "
        "FROM pg_stat_replication");
    auto archiver = conn.Query(
        "SELECT archived_count, coalesce(last_archived_wal, ''), "
        "coalesce(extract(epoch FROM last_archived_time) * 1000, 0)::bigint, failed_count, "
        "coalesce(last_failed_wal, ''), coalesce(extract(epoch FROM last_failed_time) * 1000, 0)::bigint "
        "FROM pg_stat_archiver");
    if (archiver.ok() && !archiver->empty()) {
      const auto& a = (*archiver)[0];
      out.archiver.observed = true;
      out.archiver.archivedCount = static_cast<int64_t>(U64(a[0]));
      out.archiver.lastArchivedWal = a[1].value_or("");
      out.archiver.lastArchivedTimeMs = static_cast<int64_t>(U64(a[2]));
      out.archiver.failedCount = static_cast<int64_t>(U64(a[3]));
      out.archiver.lastFailedWal = a[4].value_or("");
      out.archiver.lastFailedTimeMs = static_cast<int64_t>(U64(a[5]));
    }
    if (rep.ok()) {
      for (const auto& row : *rep) {
        reconcilers::ReplicationRow rr;
        rr.applicationName = row[0].value_or("");
        rr.state = row[1].value_or("");
        rr.syncState = row[2].value_or("");
        rr.sentLsn = U64(row[3]);
        rr.flushLsn = U64(row[4]);
        rr.replayLsn = U64(row[5]);
        rr.lagBytes = row[6] ? std::atoll(row[6]->c_str()) : 0;
        rr.replayLagSeconds = row[7] ? std::atof(row[7]->c_str()) : 0;
        out.replication.push_back(rr);
      }
    }
  }
  // wal_status through to_jsonb: 11 and 12 have no such column, and the
  // same query serves every major.
  auto slots = conn.Query(
      "SELECT slot_name, active, COALESCE(pg_wal_lsn_diff(restart_lsn, '0/0'), 0)::text, "
      "COALESCE(to_jsonb(s) ->> 'wal_status', '') "
      "FROM pg_replication_slots s WHERE slot_type = 'physical' ORDER BY slot_name");
  if (slots.ok()) {
    for (const auto& row : *slots) {
      out.slots.push_back({row[0].value_or(""), True(row[1]), U64(row[2]), row[3].value_or("")});
    }
  }
  return true;
}

}  // namespace

struct Observer::Pool {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<pq::Connection>> idle;  // key: host:port

  std::unique_ptr<pq::Connection> Take(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    auto conn = std::move(it->second);
    idle.erase(it);
    return conn;
  }
  void Give(const std::string& key, std::unique_ptr<pq::Connection> conn) {
    std::lock_guard<std::mutex> lock(mu);
    idle[key] = std::move(conn);
  }

  // One kept-alive HTTPS client per agent: a TLS handshake per poll would
  // cost milliseconds of CPU each time (bench/RESULTS.md, HTTP transports).
  std::map<std::string, std::shared_ptr<HttpClient>> agents;  // key: url
  std::shared_ptr<HttpClient> Agent(const std::string& url, const TlsFiles& tls) {
    std::lock_guard<std::mutex> lock(mu);
    auto& client = agents[url];
    if (!client) client = std::make_shared<HttpClient>(url, 1500ms, tls);
    return client;
  }
};

Observer::Observer() : pool_(std::make_unique<Pool>()) {}
Observer::~Observer() = default;

ObservedInstance Observer::ObserveInstance(const InstanceTarget& target, const Credentials& credentials) {
  ObservedInstance out;
  out.name = target.name;
  out.index = target.index;
  out.host = target.host;
  out.port = target.port;
  out.shuttingDown = target.stopping;
  if (target.host.empty()) {
    out.pgError = "no address yet";
    return out;
  }
  auto response = target.agentTls ? pool_->Agent(target.agentUrl, *target.agentTls)->Call("GET", "/status", "",
                                                                                          target.agentToken)
                                  : HttpCall("GET", target.agentUrl + "/status", "", target.agentToken, 1500ms);
  if (response.ok() && response->status == 200) {
    auto status = agent::DecodeAgentStatus(response->body);
    if (status.ok()) {
      out.agentReachable = true;
      out.agentState = status->state;
      out.dataDirRole = status->dataDirRole;
      out.postgresRunning = status->postgresRunning;
      out.postgresReady = status->postgresReady;
      out.progress = status->progress;
      out.lastError = status->lastError;
      out.configHash = status->configHash;
      out.restarts = status->restarts;
      out.agentFenced = status->fenced;
      out.checkpointLsn = status->checkpointLsn;
      out.shuttingDown = out.shuttingDown || status->shuttingDown;
      out.repository = status->repository;
    }
  }
  // Ask PostgreSQL even when the agent is silent: it may still be serving.
  if (out.agentReachable && !out.postgresRunning) return out;
  std::string key = target.host + ":" + std::to_string(target.port);
  auto conn = pool_->Take(key);
  bool reused = conn != nullptr;
  if (conn == nullptr) {
    pq::ConnectionParams params;
    params.host = target.host;
    params.port = target.port;
    params.password = credentials.superuserPassword;
    params.sslRootCert = credentials.caFile;
    params.connectTimeoutSeconds = 2;
    params.applicationName = "pgrs-observer";
    auto opened = pq::Connection::Open(params);
    if (!opened.ok()) {
      out.pgError = opened.status().message();
      return out;
    }
    conn = std::move(*opened);
  }
  if (ObservePostgres(out, *conn)) {
    pool_->Give(key, std::move(conn));
  } else if (reused) {
    // A connection from an earlier pass may have died with its server; a
    // fresh one tells the truth about now.
    out = ObservedInstance{};
    return ObserveInstance(target, credentials);
  }
  return out;
}

reconcilers::ObservedSet Observer::ObserveSet(const std::vector<InstanceTarget>& targets,
                                              const Credentials& credentials) {
  std::vector<std::future<ObservedInstance>> futures;
  for (const auto& t : targets) {
    futures.push_back(std::async(std::launch::async, [this, t, &credentials] {
      return ObserveInstance(t, credentials);
    }));
  }
  reconcilers::ObservedSet set;
  for (auto& f : futures) set.instances.push_back(f.get());
  std::sort(set.instances.begin(), set.instances.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  return set;
}

}  // namespace pgrs::observer
