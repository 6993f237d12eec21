// HTTPS with mutual TLS on loopback: real certificates made with the
// openssl CLI, a real server and client.
#include "operator/util/http.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "operator/agent/temp_dir_for_test.h"
#include "operator/util/files.h"
#include "operator/util/process.h"

namespace pgrs {
namespace {

using namespace std::chrono_literals;

// A CA and certificates signed by it, EC P-256 keys (quick to make).
class TestPki {
 public:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}

  void MakeCa(const std::string& name) {
    Run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Key(name),
         "-out", Crt(name), "-days", "2", "-subj", "/CN=" + name});
  }
  // `ext`: the extensions, e.g. "subjectAltName=DNS:agent.test\nextendedKeyUsage=serverAuth".
  void MakeCert(const std::string& name, const std::string& ca, const std::string& ext) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + name + ".ext", ext + "\n").ok());
    Run({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Key(name), "-out",
         dir_ + "/" + name + ".csr", "-subj", "/CN=" + name});
    Run({"x509", "-req", "-in", dir_ + "/" + name + ".csr", "-CA", Crt(ca), "-CAkey", Key(ca), "-CAcreateserial",
         "-out", Crt(name), "-days", "2", "-extfile", dir_ + "/" + name + ".ext"});
  }
  std::string Crt(const std::string& name) const { return dir_ + "/" + name + ".crt"; }
  std::string Key(const std::string& name) const { return dir_ + "/" + name + ".key"; }

 private:
  void Run(const std::vector<std::string>& args) {
    ProcessSpec spec;
    spec.argv = {"/usr/bin/openssl"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    auto result = RunCommand(spec, 60s);
    ASSERT_TRUE(result.ok()) << result.status().message();
    ASSERT_TRUE(result->ok()) << "openssl " << args[0] << ": " << result->output;
  }
  std::string dir_;
};

void Copy(const std::string& from, const std::string& to) {
  auto content = ReadFile(from);
  ASSERT_TRUE(content.ok());
  ASSERT_TRUE(WriteFileAtomic(to, *content, 0600).ok());
}

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    pki_.MakeCa("ca");
    pki_.MakeCa("other-ca");
    const std::string server = "subjectAltName=DNS:agent.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth";
    pki_.MakeCert("server", "ca", server);
    pki_.MakeCert("server-other-name", "ca", "subjectAltName=DNS:other.test\nextendedKeyUsage=serverAuth");
    pki_.MakeCert("client", "ca", "extendedKeyUsage=clientAuth");
    pki_.MakeCert("intruder", "other-ca", "extendedKeyUsage=clientAuth");
    if (HasFatalFailure()) return;
    // The files the server serves, replaced in place by the rotation test.
    Copy(pki_.Crt("server"), ServedCert());
    Copy(pki_.Key("server"), ServedKey());
  }

  std::string ServedCert() const { return dir_.path() + "/served.crt"; }
  std::string ServedKey() const { return dir_.path() + "/served.key"; }

  // A server over mutual TLS: /status (token and client certificate),
  // /healthz (open) and /slow (waits for Release()).
  void StartServer() {
    server_ =
        std::make_unique<HttpServer>("127.0.0.1:0", "token", TlsFiles{ServedCert(), ServedKey(), pki_.Crt("ca"), ""});
    server_->Handle("GET", "/status", [](const HttpRequest&) { return HttpResponse{200, R"({"ok":true})"}; });
    server_->Handle(
        "GET", "/healthz",
        [](const HttpRequest&) {
          return HttpResponse{200, "ok", "text/plain"};
        },
        true);
    server_->Handle("GET", "/slow", [this](const HttpRequest&) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, 20s, [this] { return released_; });
      return HttpResponse{200, R"({"slow":true})"};
    });
    auto started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
    ASSERT_GT(server_->Port(), 0);
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  void TearDown() override {
    Release();
    if (server_) server_->Stop();
  }

  std::string Url(const std::string& path, const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(server_->Port()) + path;
  }
  TlsFiles Client(const std::string& ca = "ca") const {
    return TlsFiles{pki_.Crt("client"), pki_.Key("client"), pki_.Crt(ca), ""};
  }
  TlsFiles Anonymous(const std::string& ca = "ca") const { return TlsFiles{"", "", pki_.Crt(ca), ""}; }

  agent::TempDirForTest dir_{"pgrs-https"};
  TestPki pki_{dir_.path()};
  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

TEST_F(HttpsTest, TheControlPlaneCertificateAndTokenAreServed) {
  StartServer();
  auto r = HttpCall("GET", Url("/status"), "", "token", 5s, Client());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ok":true})");
  // The bearer token is still checked on top of the certificate.
  auto wrong = HttpCall("GET", Url("/status"), "", "not-the-token", 5s, Client());
  ASSERT_TRUE(wrong.ok()) << wrong.status().message();
  EXPECT_EQ(wrong->status, 401);
  auto none = HttpCall("GET", Url("/status"), "", "", 5s, Client());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->status, 401);
}

TEST_F(HttpsTest, WithoutAClientCertificateOnlyOpenEndpointsAnswer) {
  StartServer();
  auto status = HttpCall("GET", Url("/status"), "", "token", 5s, Anonymous());
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(status->status, 403);
  EXPECT_NE(status->body.find("client certificate"), std::string::npos) << status->body;
  auto health = HttpCall("GET", Url("/healthz"), "", "", 5s, Anonymous());
  ASSERT_TRUE(health.ok()) << health.status().message();
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");
  // As the kubelet probes: no client certificate, the server not verified.
  TlsFiles probe;
  probe.insecureSkipVerify = true;
  auto probed = HttpCall("GET", Url("/healthz"), "", "", 5s, probe);
  ASSERT_TRUE(probed.ok()) << probed.status().message();
  EXPECT_EQ(probed->status, 200);
  auto probedStatus = HttpCall("GET", Url("/status"), "", "token", 5s, probe);
  ASSERT_TRUE(probedStatus.ok()) << probedStatus.status().message();
  EXPECT_EQ(probedStatus->status, 403);
}

TEST_F(HttpsTest, AClientCertificateFromAnotherCaFailsTheHandshake) {
  StartServer();
  TlsFiles intruder{pki_.Crt("intruder"), pki_.Key("intruder"), pki_.Crt("ca"), ""};
  auto status = HttpCall("GET", Url("/status"), "", "token", 5s, intruder);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.status().code(), StatusCode::kUnavailable);
  // Even an open endpoint: a certificate presented must verify.
  auto health = HttpCall("GET", Url("/healthz"), "", "", 5s, intruder);
  EXPECT_FALSE(health.ok());
}

TEST_F(HttpsTest, PlainHttpToTheHttpsPortFails) {
  StartServer();
  auto start = std::chrono::steady_clock::now();
  auto r = HttpCall("GET", "http://127.0.0.1:" + std::to_string(server_->Port()) + "/healthz", "", "token", 5s);
  EXPECT_FALSE(r.ok()) << "status " << r->status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << "dropped at once, not by the client's timeout";
  // And the server still serves HTTPS afterwards.
  auto health = HttpCall("GET", Url("/healthz"), "", "", 5s, Client());
  ASSERT_TRUE(health.ok()) << health.status().message();
  EXPECT_EQ(health->status, 200);
}

TEST_F(HttpsTest, TheServerCertificateMustCarryTheExpectedName) {
  StartServer();
  // Dial the IP, verify a DNS name the certificate carries.
  TlsFiles named = Client();
  named.verifyName = "agent.test";
  auto ok = HttpCall("GET", Url("/status"), "", "token", 5s, named);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->status, 200);
  // A name it does not carry.
  named.verifyName = "other.test";
  auto wrongName = HttpCall("GET", Url("/status"), "", "token", 5s, named);
  ASSERT_FALSE(wrongName.ok());
  EXPECT_EQ(wrongName.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(wrongName.status().message().find("hostname mismatch"), std::string::npos) << wrongName.status().message();
  // The server serving a certificate for another name (same CA).
  Copy(pki_.Crt("server-other-name"), ServedCert());
  Copy(pki_.Key("server-other-name"), ServedKey());
  ASSERT_TRUE(server_->Reload().ok());
  named.verifyName = "agent.test";
  auto refused = HttpCall("GET", Url("/status"), "", "token", 5s, named);
  EXPECT_FALSE(refused.ok());
  // Without verifyName the URL's host is checked: 127.0.0.1 is not in it either.
  EXPECT_FALSE(HttpCall("GET", Url("/status"), "", "token", 5s, Client()).ok());
  // A server trusted by another CA only.
  EXPECT_FALSE(HttpCall("GET", Url("/healthz"), "", "", 5s, Anonymous("other-ca")).ok());
}

TEST_F(HttpsTest, MissingFilesAreClearErrors) {
  HttpServer server("127.0.0.1:0", "token", TlsFiles{dir_.path() + "/none.crt", ServedKey(), "", ""});
  auto started = server.Start();
  EXPECT_FALSE(started.ok());
  EXPECT_NE(started.message().find("none.crt"), std::string::npos) << started.message();
  HttpServer mismatched("127.0.0.1:0", "token", TlsFiles{ServedCert(), pki_.Key("client"), "", ""});
  auto bad = mismatched.Start();
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("does not match"), std::string::npos) << bad.message();

  StartServer();
  auto noCa = HttpCall("GET", Url("/healthz"), "", "", 5s, TlsFiles{"", "", dir_.path() + "/none.crt", ""});
  EXPECT_FALSE(noCa.ok());
  EXPECT_NE(noCa.status().message().find("none.crt"), std::string::npos) << noCa.status().message();
  auto plainWithTls = HttpCall("GET", "http://127.0.0.1:1/healthz", "", "", 5s, Client());
  EXPECT_EQ(plainWithTls.status().code(), StatusCode::kInvalid);
}

// A certificate from a new CA replaces the served one: new connections see
// it (only a client trusting the new CA gets in), a request in flight and a
// kept-alive connection are not dropped.
TEST_F(HttpsTest, ReplacedCertificatesServeNewConnectionsWithoutDroppingOpenOnes) {
  pki_.MakeCa("new-ca");
  pki_.MakeCert("server-new", "new-ca", "subjectAltName=DNS:agent.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth");
  ASSERT_FALSE(HasFatalFailure());
  StartServer();

  HttpClient keptAlive(Url(""), 5s, Client());
  auto before = keptAlive.Call("GET", "/status", "", "token");
  ASSERT_TRUE(before.ok()) << before.status().message();
  auto inFlight =
      std::async(std::launch::async, [&] { return HttpCall("GET", Url("/slow"), "", "token", 20s, Client()); });
  // The slow request is being served before the certificates change.
  ASSERT_EQ(inFlight.wait_for(200ms), std::future_status::timeout);

  // Rotation by the files alone: no Reload() call, the next handshake notices.
  Copy(pki_.Crt("server-new"), ServedCert());
  Copy(pki_.Key("server-new"), ServedKey());
  auto fresh = HttpCall("GET", Url("/status"), "", "token", 5s, Client("new-ca"));
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  EXPECT_EQ(fresh->status, 200);
  EXPECT_FALSE(HttpCall("GET", Url("/status"), "", "token", 5s, Client("ca")).ok())
      << "a new connection still got the old certificate";

  // The kept-alive connection (its client trusts the old CA only) goes on.
  auto after = keptAlive.Call("GET", "/status", "", "token");
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after->status, 200);

  Release();
  auto slow = inFlight.get();
  ASSERT_TRUE(slow.ok()) << slow.status().message();
  EXPECT_EQ(slow->body, R"({"slow":true})");

  // A half-written rotation (a key that does not match) keeps the current
  // certificates; Reload() says why.
  Copy(pki_.Key("client"), ServedKey());
  auto reload = server_->Reload();
  EXPECT_FALSE(reload.ok());
  EXPECT_NE(reload.message().find("does not match"), std::string::npos) << reload.message();
  auto still = HttpCall("GET", Url("/status"), "", "token", 5s, Client("new-ca"));
  ASSERT_TRUE(still.ok()) << still.status().message();
  EXPECT_EQ(still->status, 200);
}

// The usual renewal: the same CA, a new leaf. A client that keeps its
// connection open goes on working through it, and so does a new one.
TEST_F(HttpsTest, AKeptAliveClientWorksThroughARenewal) {
  pki_.MakeCert("server-renewed", "ca", "subjectAltName=DNS:agent.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth");
  ASSERT_FALSE(HasFatalFailure());
  StartServer();
  HttpClient client(Url(""), 5s, Client());
  for (int i = 0; i < 3; ++i) {
    auto r = client.Call("GET", "/status", "", "token");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->status, 200);
  }
  Copy(pki_.Crt("server-renewed"), ServedCert());
  Copy(pki_.Key("server-renewed"), ServedKey());
  ASSERT_TRUE(server_->Reload().ok());
  for (int i = 0; i < 3; ++i) {
    auto r = client.Call("GET", "/status", "", "token");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->status, 200);
  }
  auto fresh = HttpCall("GET", Url("/status"), "", "token", 5s, Client());
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  EXPECT_EQ(fresh->status, 200);
}

// A kept-alive connection the server closed (it restarted) is made again
// by the next call, which does not fail.
TEST_F(HttpsTest, AClientReconnectsWhenTheServerClosedItsConnection) {
  StartServer();
  HttpClient client(Url(""), 5s, Client());
  auto first = client.Call("GET", "/status", "", "token");
  ASSERT_TRUE(first.ok()) << first.status().message();
  int port = server_->Port();
  server_->Stop();
  server_ = std::make_unique<HttpServer>("127.0.0.1:" + std::to_string(port), "token",
                                         TlsFiles{ServedCert(), ServedKey(), pki_.Crt("ca"), ""});
  server_->Handle("GET", "/status", [](const HttpRequest&) { return HttpResponse{200, R"({"again":true})"}; });
  auto started = server_->Start();
  ASSERT_TRUE(started.ok()) << started.message();
  auto second = client.Call("GET", "/status", "", "token");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->body, R"({"again":true})");
}

}  // namespace
}  // namespace pgrs
