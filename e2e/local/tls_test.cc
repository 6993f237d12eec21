// End to end, with real PostgreSQL 15: TLS is on by default. Clients connect
// with sslmode=verify-full through status.connection, connections without
// TLS are refused, standbys stream over TLS with their client certificate,
// and certificates with a short validity are renewed while a writer commits,
// with no failed commit and no restart.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "e2e/local/harness.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

using namespace std::chrono_literals;

// The serial number of the certificate the server presents to a new
// connection ("" when the connection fails or is not over TLS).
std::string ServerCertificateSerial(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  std::string serial;
  if (PQstatus(conn) == CONNECTION_OK) {
    auto* ssl = static_cast<SSL*>(PQsslStruct(conn, "OpenSSL"));
    if (X509* peer = ssl != nullptr ? SSL_get1_peer_certificate(ssl) : nullptr) {
      BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(peer), nullptr);
      char* hex = BN_bn2hex(bn);
      serial = hex;
      OPENSSL_free(hex);
      BN_free(bn);
      X509_free(peer);
    }
  }
  PQfinish(conn);
  return serial;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// Walsenders, and those of them over TLS (pg_stat_ssl), on the primary.
std::pair<int, int> WalsendersOverTls(LocalCluster& c, const std::string& set, int port) {
  auto rows = c.Sql(set, port,
                    "SELECT count(*), count(*) FILTER (WHERE s.ssl AND s.client_dn LIKE '%pgrs_replication%') "
                    "FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.state = 'streaming'");
  if (!rows.ok() || rows->empty()) return {-1, -1};
  return {std::atoi((*rows)[0][0]->c_str()), std::atoi((*rows)[0][1]->c_str())};
}

TEST(LocalTls, OnByDefaultVerifiedEverywhereAndPlainTextRefused) {
  LocalCluster c;
  int base = FreePortRange(3);
  ASSERT_GT(base, 0);
  c.StartRun();
  auto applied = c.ApplyText(Manifest("sec", 3, base));
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_TRUE(c.WaitReady("sec"));
  auto set = c.Get("sec");

  // status.connection verifies the server against the set's CA.
  const std::string& rw = set.status.connection.readWrite;
  EXPECT_NE(rw.find("sslmode=verify-full"), std::string::npos) << rw;
  ASSERT_FALSE(set.status.connection.caFile.empty());
  EXPECT_NE(rw.find("sslrootcert=" + set.status.connection.caFile), std::string::npos) << rw;
  auto ssl = c.SqlConnInfo(rw, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  ASSERT_TRUE(ssl.ok()) << ssl.status().ToString();
  EXPECT_EQ((*ssl)[0][0], "t");
  EXPECT_EQ((*ssl)[0][1]->rfind("TLSv1.", 0), 0u) << *(*ssl)[0][1];
  // psql, as the README says, with the same string.
  auto psql = c.Local("psql", {"sec", "--", "-Atc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"});
  EXPECT_EQ(psql.exitCode, 0) << psql.output;
  EXPECT_NE(psql.output.find("t"), std::string::npos) << psql.output;

  // The same host and password without TLS: refused by pg_hba.
  auto plain = c.SqlConnInfo(Replace(rw, "sslmode=verify-full", "sslmode=disable"), "SELECT 1");
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.status().message().find("no encryption"), std::string::npos) << plain.status().message();
  // A CA that is not the set's: the server is not trusted.
  auto other = c.SqlConnInfo(Replace(rw, "sslrootcert=", "sslrootcert=/etc/ssl/certs/ca-certificates.crt x="), "SELECT 1");
  EXPECT_FALSE(other.ok());

  // Both standbys stream over TLS, authenticated by the replication
  // client certificate.
  EXPECT_EQ(WalsendersOverTls(c, "sec", base), std::make_pair(2, 2));

  // The agents' API: HTTPS with mutual TLS. The control plane's client
  // certificate and the token get the status; without the certificate only
  // the probes answer; plain HTTP fails at the handshake.
  const LocalCluster::AgentApi agent = c.AgentEndpoint("sec", "sec-1");
  ASSERT_EQ(agent.url.rfind("https://127.0.0.1:", 0), 0u) << agent.url;
  ASSERT_TRUE(agent.tls.has_value());
  auto status = agent.Call("GET", "/status", "", agent.token);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->status, 200) << status->body;
  TlsFiles anonymous = *agent.tls;
  anonymous.certFile.clear();
  anonymous.keyFile.clear();
  auto noCert = HttpCall("GET", agent.url + "/status", "", agent.token, 5s, anonymous);
  ASSERT_TRUE(noCert.ok()) << noCert.status().ToString();
  EXPECT_EQ(noCert->status, 403);
  auto probe = HttpCall("GET", agent.url + "/healthz", "", "", 5s, anonymous);
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  EXPECT_EQ(probe->status, 200);
  auto plainHttp = HttpCall("GET", Replace(agent.url, "https://", "http://") + "/status", "", agent.token, 5s);
  EXPECT_TRUE(!plainHttp.ok() || plainHttp->status != 200);

  // Keys are readable by their owner only.
  for (const std::string& key : {c.stateDir() + "/sets/sec/tls/ca.key", c.stateDir() + "/sets/sec/tls/sec-1.key",
                                 c.InstanceDir("sec", "sec-2") + "/tls/server.key",
                                 c.InstanceDir("sec", "sec-2") + "/tls/replication.key"}) {
    struct stat st {};
    ASSERT_EQ(::stat(key.c_str(), &st), 0) << key;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }
}

TEST(LocalTls, ShortLivedCertificatesAreRenewedWithoutRestartOrFailedCommit) {
  LocalCluster c;
  int base = FreePortRange(2);
  ASSERT_GT(base, 0);
  c.StartRun();
  // Renewed at two thirds: every 40 s.
  auto applied = c.ApplyText(Manifest("rot", 2, base, "  tls:\n    certificateValidity: 1m\n"));
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_TRUE(c.WaitReady("rot"));
  const auto set = c.Get("rot");
  const std::string rw = set.status.connection.readWrite;
  const pid_t primaryPid = c.PostmasterPid("rot", "rot-1");
  const pid_t standbyPid = c.PostmasterPid("rot", "rot-2");
  ASSERT_GT(primaryPid, 0);
  ASSERT_GT(standbyPid, 0);
  const std::string firstSerial = ServerCertificateSerial(rw);
  ASSERT_FALSE(firstSerial.empty());
  const std::string standby = "host=127.0.0.1 port=" + std::to_string(base + 1) + " user=postgres dbname=postgres passfile=" +
                              c.stateDir() + "/sets/rot/pgpass sslmode=verify-full sslrootcert=" +
                              set.status.connection.caFile;
  const std::string firstStandbySerial = ServerCertificateSerial(standby);
  ASSERT_FALSE(firstStandbySerial.empty());
  ASSERT_TRUE(c.SqlConnInfo(rw, "CREATE TABLE ticks (id bigint primary key)").ok());

  // One connection commits all along; a renewal must not drop it.
  std::atomic<bool> stop{false};
  std::atomic<int> committed{0}, failed{0};
  std::string firstError;
  std::thread writer([&] {
    PGconn* conn = PQconnectdb(rw.c_str());
    for (int64_t id = 1; !stop; ++id) {
      PGresult* r = PQexec(conn, ("INSERT INTO ticks VALUES (" + std::to_string(id) + ")").c_str());
      if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        ++committed;
      } else if (failed++ == 0) {
        firstError = PQerrorMessage(conn);
      }
      PQclear(r);
      std::this_thread::sleep_for(20ms);
    }
    PQfinish(conn);
  });

  // New connections see a new certificate.
  EXPECT_TRUE(Eventually([&] {
    std::string serial = ServerCertificateSerial(rw);
    return !serial.empty() && serial != firstSerial;
  }, 90s)) << "the primary still presents " << firstSerial;
  ASSERT_TRUE(Eventually([&] { return committed.load() > 100; }, 30s));
  stop = true;
  writer.join();

  EXPECT_EQ(failed.load(), 0) << firstError;
  // Reloaded, not restarted; no failover.
  EXPECT_EQ(c.PostmasterPid("rot", "rot-1"), primaryPid);
  EXPECT_EQ(c.PostmasterPid("rot", "rot-2"), standbyPid);
  EXPECT_TRUE(c.Get("rot").status.failovers.empty());
  EXPECT_EQ(WalsendersOverTls(c, "rot", base), std::make_pair(1, 1));
  // The standby's server certificate was renewed too.
  // (Issued a moment after the primary's, so renewed a moment later.)
  EXPECT_TRUE(Eventually([&] {
    std::string serial = ServerCertificateSerial(standby);
    return !serial.empty() && serial != firstStandbySerial;
  }, 30s)) << "the standby still presents " << firstStandbySerial;
}

}  // namespace
}  // namespace pgrs::e2e
