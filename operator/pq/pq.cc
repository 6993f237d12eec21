#include "operator/pq/pq.h"

#include "operator/postgres/config.h"

namespace pgrs::pq {

std::string ConnInfo(const ConnectionParams& p) {
  using postgres::QuoteConnInfoValue;
  std::string s = "host=" + QuoteConnInfoValue(p.host) + " port=" + std::to_string(p.port) +
                  " user=" + QuoteConnInfoValue(p.user) + " dbname=" + QuoteConnInfoValue(p.dbname) +
                  " connect_timeout=" + std::to_string(p.connectTimeoutSeconds) +
                  " application_name=" + QuoteConnInfoValue(p.applicationName);
  if (!p.sslRootCert.empty()) s += " sslmode=verify-full sslrootcert=" + QuoteConnInfoValue(p.sslRootCert);
  if (!p.password.empty()) s += " password=" + QuoteConnInfoValue(p.password);
  return s;
}

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectionParams& params) {
  return OpenConnInfo(ConnInfo(params), params.host + ":" + std::to_string(params.port));
}

Result<std::unique_ptr<Connection>> Connection::OpenConnInfo(const std::string& conninfo, const std::string& what) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return Status::Unavailable("libpq: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    PQfinish(conn);
    return Status::Unavailable(what + ": " + message);
  }
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() { PQfinish(conn_); }

Result<std::vector<Row>> Connection::Query(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  // Without parameters the simple protocol, which also takes several
  // statements (the rows are those of the last one).
  PGresult* res = values.empty() ? PQexec(conn_, sql.c_str())
                                 : PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                                values.data(), nullptr, nullptr, 0);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    std::string message = PQresultErrorMessage(res);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    PQclear(res);
    if (PQstatus(conn_) != CONNECTION_OK) return Status::Unavailable(message);
    return Status::Internal(message);
  }
  std::vector<Row> rows;
  int n = PQntuples(res), m = PQnfields(res);
  rows.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Row row;
    for (int j = 0; j < m; ++j) {
      if (PQgetisnull(res, i, j)) row.push_back(std::nullopt);
      else row.push_back(std::string(PQgetvalue(res, i, j), static_cast<size_t>(PQgetlength(res, i, j))));
    }
    rows.push_back(std::move(row));
  }
  PQclear(res);
  return rows;
}

Status Connection::Exec(const std::string& sql, const std::vector<std::string>& params) {
  auto r = Query(sql, params);
  return r.ok() ? Status::Ok() : r.status();
}

Result<std::string> Connection::EncryptPassword(const std::string& user, const std::string& password) {
  char* verifier = PQencryptPasswordConn(conn_, password.c_str(), user.c_str(), "scram-sha-256");
  if (verifier == nullptr) return Status::Internal(std::string("PQencryptPasswordConn: ") + PQerrorMessage(conn_));
  std::string out = verifier;
  PQfreemem(verifier);
  return out;
}

std::string Connection::QuoteLiteral(const std::string& text) {
  char* q = PQescapeLiteral(conn_, text.c_str(), text.size());
  std::string out = q ? q : "''";
  PQfreemem(q);
  return out;
}

std::string Connection::QuoteIdentifier(const std::string& text) {
  char* q = PQescapeIdentifier(conn_, text.c_str(), text.size());
  std::string out = q ? q : "\"\"";
  PQfreemem(q);
  return out;
}

bool Ping(const ConnectionParams& params) { return PQping(ConnInfo(params).c_str()) == PQPING_OK; }

}  // namespace pgrs::pq
