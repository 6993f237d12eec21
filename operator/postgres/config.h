// PostgreSQL configuration that pgrs generates for one instance, per major
// version (11..17). A pure function: defaults, then the user's parameters,
// then the settings pgrs must own, rendered as file text plus a hash that
// tells the agent whether anything changed.
//
//   11     recovery.conf (standby_mode, primary_conninfo, primary_slot_name,
//          recovery_target_timeline), wal_keep_segments
//   12     standby.signal + the same settings in postgresql.conf, wal_keep_segments
//   13+    standby.signal, wal_keep_size, max_slot_wal_keep_size
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pgrs::postgres {

enum class Role { kPrimary, kStandby };
const char* RoleName(Role role);  // "primary" | "standby"

// Where a standby streams from.
struct UpstreamConfig {
  std::string host;
  int port = 0;
  std::string user;             // the replication role
  std::string passfile;         // absolute path of a libpq passfile with its password
  std::string applicationName;  // the standby's instance name (pg_stat_replication.application_name)
  std::string slotName;         // empty = no slot
  // TLS (InstanceConfig::tls): verify the upstream's certificate against
  // this CA and its name (verify-full), and authenticate with this client
  // certificate. Empty = no TLS settings in primary_conninfo.
  std::string sslRootCert;
  std::string sslCert;
  std::string sslKey;
};

// TLS for the instance's server (spec.tls.enabled): the files, absolute
// paths outside the data directory (pg_basebackup and pg_rewind copy it).
struct TlsFiles {
  std::string certFile;  // the server's certificate
  std::string keyFile;   // its private key (mode 0600, owned by postgres)
  std::string caFile;    // the CA that client certificates (replication) are checked against
};

// Continuous archiving with pgBackRest: every instance gets archive_mode=on
// and an archive_command that pushes to the stanza (PostgreSQL archives only
// on the primary), and a standby gets a restore_command that reads from it.
struct ArchiveConfig {
  std::string pgbackrest = "pgbackrest";  // the program
  std::string configFile;                 // the instance's pgbackrest.conf (absolute)
  std::string stanza;                     // the set's name
};

struct InstanceConfig {
  int majorVersion = 15;
  std::string instanceName;
  Role role = Role::kPrimary;
  std::string listenAddresses = "127.0.0.1";  // "*" in Kubernetes
  int port = 5432;
  std::map<std::string, std::string> userParameters;  // spec.postgres.parameters
  std::vector<std::string> userHbaRules;               // spec.postgres.pgHBA
  // Networks (CIDR) from which clients and standbys may connect with a
  // password, e.g. "127.0.0.1/32" locally, "0.0.0.0/0" in a cluster.
  std::vector<std::string> clientNetworks = {"127.0.0.1/32"};
  std::string replicationUser = "pgrs_replication";
  std::optional<UpstreamConfig> upstream;  // set iff role == kStandby
  // primary only: e.g. "ANY 1 (demo-2, demo-3)"; empty = asynchronous
  std::string synchronousStandbyNames;
  std::optional<ArchiveConfig> archive;  // unset = archive_mode and restore_command left alone
  // Set: ssl = on with these files, and pg_hba admits TCP connections over
  // TLS only (hostssl; replication by client certificate, users by
  // password) and rejects the rest (hostnossl ... reject) before the
  // user's rules. Unset: no ssl settings, `host` rules as before.
  std::optional<TlsFiles> tls;
  // Primary only: a restored data directory in archive recovery toward its
  // target (12+): its recovery.signal stays until PostgreSQL promotes.
  bool archiveRecovery = false;
  // spec.replication.maxSlotWalKeepSize (13+; 11 and 12 have no such
  // parameter): the most WAL a primary keeps for a replication slot, as
  // WalSizeMegabytes reads it ("512MB"; "-1" = no bound). Empty = not written.
  std::string maxSlotWalKeepSize;
  // Whether standbys stream through slots (spec.replication.slots). Then a
  // bounded maxSlotWalKeepSize also caps wal_keep_size, which PostgreSQL
  // keeps regardless of slots: a slot is invalidated only once it is
  // behind both, so the bound would otherwise be 1GB at the least.
  bool replicationSlots = true;
};

struct ConfigFile {
  std::string name;     // relative to the data directory
  std::string content;  // exact file text
};

struct GeneratedConfig {
  std::vector<ConfigFile> files;         // to write (postgresql.conf, pg_hba.conf, standby files)
  std::vector<std::string> removeFiles;  // must not exist for this role (standby.signal, recovery.conf)
  std::string hash;                      // hex digest over all of the above
};

GeneratedConfig GenerateConfig(const InstanceConfig& config);

// Parameters the user may not set in spec.postgres.parameters (pgrs owns
// them for replication, failover and rewind to work), for that major.
const std::vector<std::string>& OwnedParameters();
bool IsOwnedParameter(const std::string& name);
// archive_mode, archive_command, archive_library, restore_command: owned
// by pgrs only while archiving is on (spec.backup); the user's otherwise.
bool IsArchiveParameter(const std::string& name);
// ssl, ssl_cert_file, ssl_key_file, ssl_ca_file, ssl_min_protocol_version:
// owned by pgrs only while TLS is on (spec.tls.enabled).
bool IsTlsParameter(const std::string& name);

// The restore_command that fetches WAL from the stanza with archive-get.
std::string RestoreCommand(const ArchiveConfig& archive);

// Version facts the agent and executor act on.
inline bool UsesRecoveryConf(int major) { return major < 12; }
inline bool HasPgPromote(int major) { return major >= 12; }
inline bool HasWalKeepSize(int major) { return major >= 13; }
inline bool HasMaxSlotWalKeepSize(int major) { return major >= 13; }

// A WAL size as spec.replication.maxSlotWalKeepSize takes it: "-1" (no
// bound) or a whole number with the unit MB, GB or TB (PostgreSQL's
// spelling, case-sensitive), in megabytes (-1 for "-1"). nullopt for
// anything else, and for sizes PostgreSQL cannot hold (over 2^31-1 MB).
std::optional<int64_t> WalSizeMegabytes(const std::string& text);

// Quotes a value for postgresql.conf: 'it''s'.
std::string QuoteConfValue(const std::string& value);
// Quotes a value for a libpq connection string when needed: 'a b', 'it\'s'.
std::string QuoteConnInfoValue(const std::string& value);

}  // namespace pgrs::postgres
