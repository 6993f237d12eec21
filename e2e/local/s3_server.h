// An S3-compatible server for tests: s3rver (npm, pinned by
// e2e/local/s3/package-lock.json, installed by scripts/install-deps.sh)
// behind TLS on 127.0.0.1 with a test CA made by openssl, bucket "pgrs".
// pgBackRest 2.45 matches the endpoint against DNS names only, so clients
// reach it as localhost:port(). s3rver's built-in account is S3RVER/S3RVER;
// it checks the access key id but not SigV4 signatures.
// Header-only test code; Stop() (or the destructor) ends the server.
#pragma once

#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "operator/util/files.h"
#include "operator/util/process.h"
#include "e2e/local/harness.h"
#include "operator/util/status.h"

namespace pgrs::e2e {

class TestS3Server {
 public:
  static constexpr char kAccessKey[] = "S3RVER";
  static constexpr char kSecretKey[] = "S3RVER";

  ~TestS3Server() { Stop(); }

  // Makes the CA, a server certificate it signs for localhost and a second
  // CA that signed nothing (ca.pem, other-ca.pem in `dir`), and starts
  // s3rver (s3rver binary at `program`) storing into dir/data.
  Status Start(const std::string& program, const std::string& dir) {
    using namespace std::chrono_literals;
    dir_ = dir;
    if (!PathExists(program)) return Status::Unavailable(program + " is missing: run scripts/install-deps.sh");
    PGRS_RETURN_IF_ERROR(MakeDirs(dir_ + "/data", 0700));
    PGRS_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/san.cnf", "subjectAltName=DNS:localhost\n", 0600));
    const std::vector<std::vector<std::string>> steps = {
        {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
         "/CN=pgrs test CA"},
        {"req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"},
        {"x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
         "server.pem", "-days", "2", "-extfile", "san.cnf"},
        {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.pem", "-days",
         "2", "-subj", "/CN=another CA"},
    };
    for (const auto& step : steps) {
      ProcessSpec openssl;
      openssl.argv = {"/usr/bin/openssl"};
      openssl.argv.insert(openssl.argv.end(), step.begin(), step.end());
      openssl.workingDir = dir_;
      auto result = RunCommand(openssl, 60s);
      if (!result.ok()) return result.status().WithContext("openssl " + step[0]);
      if (!result->ok()) return Status::Internal("openssl " + step[0] + ": " + result->output);
    }
    port_ = FreePortRange(1);
    if (port_ <= 0) return Status::Unavailable("no free port for s3rver");
    ProcessSpec spec;
    spec.argv = {program, "--directory", dir_ + "/data", "--address", "127.0.0.1", "--port", std::to_string(port_),
                 "--key", dir_ + "/server.key", "--cert", dir_ + "/server.pem", "--configure-bucket", "pgrs"};
    spec.outputFile = Log();
    auto pid = SpawnProcess(spec);
    if (!pid.ok()) return pid.status();
    pid_ = *pid;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto log = ReadFile(Log());
      if (log.ok() && log->find("S3rver listening") != std::string::npos) return Status::Ok();
      std::this_thread::sleep_for(100ms);
    }
    return Status::Unavailable("s3rver did not start: " + Tail());
  }

  void Stop() {
    using namespace std::chrono_literals;
    if (pid_ > 0) StopChild(pid_, SIGTERM, 5s);
    pid_ = 0;
  }

  int port() const { return port_; }
  std::string endpoint() const { return "localhost:" + std::to_string(port_); }
  std::string CaFile(const std::string& which = "ca.pem") const { return dir_ + "/" + which; }
  std::string Log() const { return dir_ + "/s3rver.log"; }
  std::string Tail() const {
    auto log = ReadFile(Log());
    return log.ok() ? log->substr(log->size() > 2000 ? log->size() - 2000 : 0) : "";
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace pgrs::e2e
