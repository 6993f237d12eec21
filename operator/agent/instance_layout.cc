#include "operator/agent/instance_layout.h"

#include <cstdlib>

#include "operator/util/files.h"

namespace pgrs::agent {

std::string InstanceLayout::DataDir() const { return JoinPath(instanceDir, "data"); }
std::string InstanceLayout::ReplicationPassfile() const { return JoinPath(instanceDir, "replication.pgpass"); }
std::string InstanceLayout::SuperuserPassfile() const { return JoinPath(instanceDir, "superuser.pgpass"); }
std::string InstanceLayout::PostgresLog() const { return JoinPath(instanceDir, "postgres.log"); }
std::string InstanceLayout::FenceMarker() const { return JoinPath(instanceDir, "fenced"); }
std::string InstanceLayout::PgBackRestDir() const { return JoinPath(instanceDir, "pgbackrest"); }
std::string InstanceLayout::PgBackRestConfigFile() const { return JoinPath(PgBackRestDir(), "pgbackrest.conf"); }
std::string InstanceLayout::PgBackRestPassfile() const { return JoinPath(PgBackRestDir(), "superuser.pgpass"); }
std::string InstanceLayout::PgBackRestCaFile() const { return JoinPath(PgBackRestDir(), "s3-ca.pem"); }

std::string InstanceLayout::PgBackRestRestoreConfigFile() const { return JoinPath(PgBackRestDir(), "restore.conf"); }
std::string InstanceLayout::PgBackRestRestoreCaFile() const { return JoinPath(PgBackRestDir(), "restore-s3-ca.pem"); }
std::string InstanceLayout::RestoreMarker() const { return JoinPath(instanceDir, "restored"); }

std::string InstanceLayout::TlsDir() const { return JoinPath(instanceDir, "tls"); }
std::string InstanceLayout::TlsCaFile() const { return JoinPath(TlsDir(), "ca.crt"); }
std::string InstanceLayout::TlsServerCertFile() const { return JoinPath(TlsDir(), "server.crt"); }
std::string InstanceLayout::TlsServerKeyFile() const { return JoinPath(TlsDir(), "server.key"); }
std::string InstanceLayout::TlsReplicationCertFile() const { return JoinPath(TlsDir(), "replication.crt"); }
std::string InstanceLayout::TlsReplicationKeyFile() const { return JoinPath(TlsDir(), "replication.key"); }

std::string InstanceLayout::PgBin(int major, const std::string& program) const {
  return pgBinRoot + "/" + std::to_string(major) + "/bin/" + program;
}

std::string InstanceLayout::DataDirRole() const {
  std::string data = DataDir();
  if (!PathExists(JoinPath(data, "PG_VERSION"))) return "";
  if (PathExists(JoinPath(data, "standby.signal")) || PathExists(JoinPath(data, "recovery.conf"))) return "standby";
  return "primary";
}

std::optional<int> InstanceLayout::DataDirMajorVersion() const {
  auto version = ReadFile(JoinPath(DataDir(), "PG_VERSION"));
  if (!version.ok()) return std::nullopt;
  return std::atoi(version->c_str());
}

ProcessSpec InstanceLayout::PostgresProgram(int major, const std::string& program,
                                            std::vector<std::string> args) const {
  ProcessSpec spec;
  spec.argv = {PgBin(major, program)};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  if (RunningAsRoot()) spec.runAs = postgresUser;
  return spec;
}

Status InstanceLayout::WritePostgresFile(const std::string& path, const std::string& content) const {
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(path, content, 0600));
  return ChownPath(path, postgresUser.uid, postgresUser.gid);
}

Status InstanceLayout::WritePostgresFileIfChanged(const std::string& path, const std::string& content,
                                                  bool* changed) const {
  auto current = ReadFile(path);
  const bool same = current.ok() && *current == content && HasMode(path, 0600);
  if (changed != nullptr) *changed = !same;
  return same ? Status::Ok() : WritePostgresFile(path, content);
}

Status InstanceLayout::MakePostgresDir(const std::string& path) const {
  if (IsDirectory(path)) return Status::Ok();
  PGRS_RETURN_IF_ERROR(MakeDirs(path, 0700));
  return ChownPath(path, postgresUser.uid, postgresUser.gid);
}

std::string PassfileLine(const std::string& user, const std::string& password) {
  return "*:*:*:" + user + ":" + password + "\n";
}

}  // namespace pgrs::agent
