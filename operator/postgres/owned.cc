#include <algorithm>
#include <cctype>

#include "operator/postgres/config.h"

namespace pgrs::postgres {

const std::vector<std::string>& OwnedParameters() {
  // Sorted. Each one is needed for replication, failover or rewind to work,
  // or locates the instance; the user sets none of them.
  static const std::vector<std::string> kOwned = {
      "cluster_name",
      "config_file",
      "data_directory",
      "external_pid_file",
      "full_page_writes",  // pg_rewind needs it
      "hba_file",
      "hot_standby",
      "hot_standby_feedback",
      "ident_file",
      // Directives, not parameters: an included file would be read in the
      // middle of postgresql.conf and could override any owned setting.
      "include",
      "include_dir",
      "include_if_exists",
      "listen_addresses",
      "max_replication_slots",
      "max_slot_wal_keep_size",  // spec.replication.maxSlotWalKeepSize
      "max_wal_senders",
      "password_encryption",  // the replication rule uses scram-sha-256
      "port",
      "primary_conninfo",
      "primary_slot_name",
      "promote_trigger_file",
      // A recovery target on a standby stops replay there, and with
      // recovery_target_action=promote makes it promote itself: a second
      // primary behind pgrs's back.
      "recovery_target",
      "recovery_target_action",
      "recovery_target_inclusive",
      "recovery_target_lsn",
      "recovery_target_name",
      "recovery_target_time",
      "recovery_target_timeline",
      "recovery_target_xid",
      "standby_mode",
      "synchronous_standby_names",
      "unix_socket_directories",
      "wal_keep_segments",
      "wal_keep_size",
      "wal_level",
      "wal_log_hints",  // pg_rewind needs it (or data checksums)
  };
  return kOwned;
}

bool IsOwnedParameter(const std::string& name) {
  // PostgreSQL matches parameter names case-insensitively: "PORT" is port.
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto& owned = OwnedParameters();
  return std::binary_search(owned.begin(), owned.end(), lower);
}

bool IsArchiveParameter(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // archive_library (15+) would replace archive_command.
  return lower == "archive_mode" || lower == "archive_command" || lower == "archive_library" ||
         lower == "restore_command";
}

bool IsTlsParameter(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "ssl" || lower == "ssl_cert_file" || lower == "ssl_key_file" || lower == "ssl_ca_file" ||
         lower == "ssl_min_protocol_version";
}

}  // namespace pgrs::postgres
