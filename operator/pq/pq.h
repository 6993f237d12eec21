// A thin RAII wrapper over libpq for the conversations pgrs has with
// PostgreSQL: observing an instance, creating roles and slots, checking for
// settings that need a restart. Blocking; call from our own threads.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "operator/util/status.h"

namespace pgrs::pq {

using Row = std::vector<std::optional<std::string>>;  // nullopt = SQL NULL

struct ConnectionParams {
  std::string host;
  int port = 5432;
  std::string user = "postgres";
  std::string password;
  std::string dbname = "postgres";
  int connectTimeoutSeconds = 2;
  std::string applicationName = "pgrs";
  // Set: over TLS only, the server's certificate verified against this CA
  // file and its name against host (sslmode=verify-full). Empty: libpq's
  // default (prefer), as for a server without TLS.
  std::string sslRootCert;
};

// The libpq connection string for `params` (values quoted as libpq wants).
std::string ConnInfo(const ConnectionParams& params);

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const ConnectionParams& params);
  // Opens a libpq connection string as it is (e.g. status.connection.*);
  // `what` names the target in errors.
  static Result<std::unique_ptr<Connection>> OpenConnInfo(const std::string& conninfo, const std::string& what);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement with text parameters ($1, $2...); returns its rows.
  Result<std::vector<Row>> Query(const std::string& sql, const std::vector<std::string>& params = {});
  Status Exec(const std::string& sql, const std::vector<std::string>& params = {});
  // A SCRAM verifier for `password`, computed here so that no plaintext
  // password ever travels in SQL text (or lands in a server log).
  Result<std::string> EncryptPassword(const std::string& user, const std::string& password);
  // Quotes a literal with this connection's rules.
  std::string QuoteLiteral(const std::string& text);
  std::string QuoteIdentifier(const std::string& text);

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_;
};

// True when the server accepts connections (PQping).
bool Ping(const ConnectionParams& params);

}  // namespace pgrs::pq
