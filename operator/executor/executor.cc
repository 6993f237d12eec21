#include "operator/executor/executor.h"

#include "operator/lease/lease.h"
#include "operator/pq/pq.h"
#include "operator/util/http.h"
#include "operator/util/log.h"

namespace pgrs::executor {

using namespace std::chrono_literals;
using reconcilers::Action;
using reconcilers::ActionType;

void AddRestoreSecrets(agent::RestoreConfig& restore, const SetSecrets& secrets) {
  if (restore.s3) {
    restore.s3->key = secrets.restoreS3Key;
    restore.s3->keySecret = secrets.restoreS3KeySecret;
    restore.s3->ca = secrets.restoreS3CA;
  }
  if (restore.encryption) restore.cipherPass = secrets.restoreCipherPass;
}

Status Executor::Execute(const api::PostgresReplicaSet& set, const reconcilers::Plan& plan,
                         const reconcilers::ObservedSet& observed) {
  auto secrets = runtime_.Secrets(set);
  if (!secrets.ok()) return secrets.status();
  for (const auto& action : plan.actions) {
    Status st = Run(set, action, observed, *secrets);
    if (!st.ok()) {
      spdlog::warn("action failed set={} action=\"{}\" error=\"{}\"", set.metadata.name, action.ToString(),
                   st.message());
      return st.WithContext(reconcilers::ActionTypeName(action.type));
    }
  }
  Status result;
  for (const auto& record : runtime_.ListInstances(set)) {
    auto it = plan.configs.find(record.name);
    if (it == plan.configs.end()) continue;
    const auto* seen = observed.Find(record.name);
    // An agent that did not answer the observer gets its config once it
    // answers again; waiting on it here would stall every other instance.
    if (seen != nullptr && !seen->agentReachable) continue;
    // A standby whose upstream has no address (its Pod is gone, mid-
    // failover) keeps streaming settings it has until there is one.
    if (it->second.role == "standby" && it->second.upstreamHost.empty()) continue;
    Status st = PushConfig(set, record, it->second, *secrets, seen ? seen->configHash : "");
    if (!st.ok() && result.ok()) result = st;
  }
  return result;
}

Status Executor::PushConfig(const api::PostgresReplicaSet& set, const InstanceRecord& instance,
                            agent::AgentConfig config, const SetSecrets& secrets, const std::string& knownHash) {
  // What only the runtime knows (addresses) and secrets complete the config.
  config.port = instance.port;
  config.listenAddresses = instance.listenAddresses;
  config.clientNetworks = instance.clientNetworks;
  if (config.tls && !config.backupRepositoryPath.empty()) config.backupServerPort = instance.backupServerPort;
  config.superuserPassword = secrets.superuserPassword;
  config.replicationPassword = secrets.replicationPassword;
  if (config.backupS3) {
    config.backupS3->key = secrets.s3Key;
    config.backupS3->keySecret = secrets.s3KeySecret;
    config.backupS3->ca = secrets.s3CA;
  }
  if (config.backupEncryption) config.backupCipherPass = secrets.backupCipherPass;
  if (config.restore) AddRestoreSecrets(*config.restore, secrets);
  if (config.tls) {
    auto server = runtime_.ServerCertificate(set, instance);
    if (!server.ok()) return server.status().WithContext("the server certificate of " + instance.name);
    *config.tls = agent::TlsConfig{secrets.tlsCA, server->certPem, server->keyPem,
                                   secrets.replicationCertificate.certPem, secrets.replicationCertificate.keyPem};
  }
  config.lease = runtime_.LeaseLocation(set);
  if (agent::ConfigHash(config) == knownHash) return Status::Ok();
  auto endpoint = runtime_.Endpoint(set, instance.name);
  if (!endpoint.ok()) return endpoint.status();
  if (pusher_) return pusher_(*endpoint, config);
  auto response =
      HttpCall("PUT", endpoint->url + "/config", agent::EncodeAgentConfig(config), endpoint->token, 3s, endpoint->tls);
  if (!response.ok()) return response.status().WithContext("configure " + instance.name);
  if (response->status / 100 != 2) {
    return Status::Unavailable("configure " + instance.name + ": agent answered " + std::to_string(response->status) +
                               " " + response->body);
  }
  spdlog::info("configured instance set={} instance={} role={} upstream={}:{} fenced={} restartOnCrash={}",
               set.metadata.name, instance.name, config.role, config.upstreamHost, config.upstreamPort, config.fenced,
               config.restartOnCrash);
  return Status::Ok();
}

Status Executor::Run(const api::PostgresReplicaSet& set, const Action& action,
                     const reconcilers::ObservedSet& observed, const SetSecrets& secrets) {
  const std::string& setName = set.metadata.name;
  switch (action.type) {
    case ActionType::kCreateInstance: {
      spdlog::info("creating instance set={} instance={} role={} reason=\"{}\"", setName, action.instance,
                   action.config.role, action.reason);
      auto record = runtime_.CreateInstance(set, action.instance, action.index);
      if (!record.ok()) return record.status();
      // In Kubernetes the Pod has no address yet: its agent gets the config
      // once the observer reaches it.
      if (record->host.empty()) return Status::Ok();
      return PushConfig(set, *record, action.config, secrets, "");
    }
    case ActionType::kDeleteInstance: {
      spdlog::info("deleting instance set={} instance={} reason=\"{}\"", setName, action.instance, action.reason);
      PGRS_RETURN_IF_ERROR(runtime_.DeleteInstance(set, action.instance));
      spdlog::info("deleted instance set={} instance={}", setName, action.instance);
      return Status::Ok();
    }
    case ActionType::kAcquireLease: {
      auto store = lease::OpenLease(runtime_.LeaseLocation(set));
      if (!store.ok()) return store.status();
      auto current = (*store)->Get();
      if (current.ok() && current->exists && current->holder == action.instance) return Status::Ok();
      auto taken = (*store)->Acquire(action.instance, action.expectedHolder,
                                     set.spec.failover.leaseDurationSeconds.value_or(5), action.holderFenced);
      if (!taken.ok()) return taken.status();
      spdlog::info("handed the primary lease set={} to={} from={} fenced={} reason=\"{}\"", setName, action.instance,
                   action.expectedHolder.empty() ? "-" : action.expectedHolder, action.holderFenced, action.reason);
      return Status::Ok();
    }
    case ActionType::kFenceFromOutside: {
      spdlog::warn("fencing from outside set={} instance={} reason=\"{}\"", setName, action.instance, action.reason);
      PGRS_RETURN_IF_ERROR(runtime_.FenceFromOutside(set, action.instance));
      return Status::Ok();
    }
    case ActionType::kCreateReplicationRole:
    case ActionType::kCreateSlot:
    case ActionType::kDropSlot: {
      const auto* primary = observed.Find(action.instance);
      if (primary == nullptr) return Status::Unavailable("instance " + action.instance + " not observed");
      return RunSql(*primary, secrets, action);
    }
  }
  return Status::Internal("unknown action");
}

namespace {

// Creates the role if it is missing and sets its attributes ("LOGIN",
// "REPLICATION LOGIN") and password (sent as a SCRAM verifier, never in
// clear). Idempotent.
Status EnsureRole(pq::Connection& c, const std::string& name, const std::string& attributes,
                  const std::string& password) {
  auto verifier = c.EncryptPassword(name, password);
  if (!verifier.ok()) return verifier.status();
  const std::string role = c.QuoteIdentifier(name);
  PGRS_RETURN_IF_ERROR(c.Exec("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = " +
                              c.QuoteLiteral(name) + ") THEN CREATE ROLE " + role + " WITH " + attributes +
                              "; END IF; END $$"));
  return c.Exec("ALTER ROLE " + role + " WITH " + attributes + " PASSWORD " + c.QuoteLiteral(*verifier));
}

}  // namespace

Status Executor::CreateApplicationDatabase(pq::Connection& c, const SetSecrets& secrets, const std::string& instance) {
  PGRS_RETURN_IF_ERROR(EnsureRole(c, secrets.appUser, "LOGIN", secrets.appPassword));
  const std::string role = c.QuoteIdentifier(secrets.appUser);
  auto exists = c.Query("SELECT 1 FROM pg_database WHERE datname = $1", {secrets.appDatabase});
  if (!exists.ok()) return exists.status();
  if (exists->empty()) {
    // CREATE DATABASE cannot run inside a DO block.
    PGRS_RETURN_IF_ERROR(c.Exec("CREATE DATABASE " + c.QuoteIdentifier(secrets.appDatabase) + " OWNER " + role));
  }
  spdlog::info("created application role and database instance={} role={} database={}", instance, secrets.appUser,
               secrets.appDatabase);
  return Status::Ok();
}

Status Executor::RunSql(const reconcilers::ObservedInstance& primary, const SetSecrets& secrets,
                        const Action& action) {
  pq::ConnectionParams params;
  params.host = primary.host;
  params.port = primary.port;
  params.password = secrets.superuserPassword;
  params.applicationName = "pgrs-executor";
  params.sslRootCert = secrets.tlsCAFile;
  auto conn = pq::Connection::Open(params);
  if (!conn.ok()) return conn.status();
  auto& c = **conn;
  switch (action.type) {
    case ActionType::kCreateReplicationRole: {
      // The application's role and database first: the replication role
      // marks the whole step done, so a failure here is retried.
      if (!secrets.appUser.empty()) PGRS_RETURN_IF_ERROR(CreateApplicationDatabase(c, secrets, primary.name));
      PGRS_RETURN_IF_ERROR(
          EnsureRole(c, reconcilers::kReplicationUser, "REPLICATION LOGIN", secrets.replicationPassword));
      spdlog::info("created replication role instance={} role={}", primary.name, reconcilers::kReplicationUser);
      return Status::Ok();
    }
    case ActionType::kCreateSlot: {
      PGRS_RETURN_IF_ERROR(c.Exec(
          "SELECT pg_create_physical_replication_slot($1) "
          "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
          {action.slot}));
      spdlog::info("created replication slot instance={} slot={}", primary.name, action.slot);
      return Status::Ok();
    }
    case ActionType::kDropSlot: {
      PGRS_RETURN_IF_ERROR(c.Exec(
          "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
          {action.slot}));
      spdlog::info("dropped replication slot instance={} slot={}", primary.name, action.slot);
      return Status::Ok();
    }
    default:
      return Status::Internal("not an SQL action");
  }
}

}  // namespace pgrs::executor
