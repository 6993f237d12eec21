// The process kubelet against the in-memory API server: Pods become local
// processes with their env, secrets, volumes and probes; restarts, deletion,
// claims, addresses and a missing Secret.
#include "e2e/kubelet/kubelet.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <sstream>
#include <thread>

#include "e2e/kube/test_util.h"
#include "operator/kube/config.h"
#include "operator/util/files.h"
#include "operator/util/process.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const kube::Resource kPods{"", "v1", "pods", "Pod", true};
const kube::Resource kClaims{"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true};
const kube::Resource kSecrets{"", "v1", "secrets", "Secret", true};
constexpr char kNs[] = "default";

Json Str(const std::string& s) { return Json::string(s); }

Json EnvField(const std::string& name, const std::string& path) {
  Json e = Json::object();
  e["name"] = Str(name);
  e["valueFrom"]["fieldRef"]["fieldPath"] = Str(path);
  return e;
}

Json EnvSecret(const std::string& name, const std::string& secret, const std::string& key) {
  Json e = Json::object();
  e["name"] = Str(name);
  e["valueFrom"]["secretKeyRef"]["name"] = Str(secret);
  e["valueFrom"]["secretKeyRef"]["key"] = Str(key);
  return e;
}

// A Pod running `/bin/sh -c script`, without a service account token.
Json ShellPod(const std::string& name, const std::string& script) {
  Json pod = Json::object();
  pod["apiVersion"] = Str("v1");
  pod["kind"] = Str("Pod");
  pod["metadata"]["name"] = Str(name);
  pod["spec"]["automountServiceAccountToken"] = Json::boolean(false);
  pod["spec"]["terminationGracePeriodSeconds"] = Json::number(30);
  Json c = Json::object();
  c["name"] = Str("main");
  c["image"] = Str("none");
  c["command"][0] = Str("/bin/sh");
  c["command"][1] = Str("-c");
  c["args"][0] = Str(script);
  c["env"][0] = EnvField("POD_NAME", "metadata.name");
  c["env"][1] = EnvField("POD_IP", "status.podIP");
  pod["spec"]["containers"][0] = c;
  return pod;
}

class KubeletTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    std::string kubeconfig = tmp_.path() + "/kubeconfig";
    ASSERT_TRUE(WriteFileAtomic(kubeconfig,
                                "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n"
                                "  cluster:\n    server: " + server_.url() +
                                    "\nusers:\n- name: test\n  user:\n    token: pod-token-123\n"
                                    "contexts:\n- name: test\n  context: {cluster: test, user: test, namespace: "
                                    "default}\n",
                                0600)
                    .ok());
    auto config = kube::LoadKubeconfig(kubeconfig);
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    options_.config = *config;
    // Pods that run as another user must get through every parent.
    ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
    options_.root = tmp_.path() + "/root";
    options_.ipBase = "127.0.77.1";
    options_.maxGrace = seconds(3);
    options_.stopGrace = milliseconds(500);
  }
  void TearDown() override {
    if (kubelet_) kubelet_->Stop();
  }

  void StartKubelet() {
    kubelet_ = std::make_unique<ProcessKubelet>(options_);
    ASSERT_TRUE(kubelet_->Start().ok());
  }

  void Create(const kube::Resource& r, const Json& object) {
    ASSERT_FALSE(server_.CallJson("POST", r.Path(kNs), object).is_null()) << object.serialize();
  }
  void CreateSecret(const std::string& name, const std::string& key, const std::string& value) {
    Json s = Json::object();
    s["apiVersion"] = Str("v1");
    s["kind"] = Str("Secret");
    s["metadata"]["name"] = Str(name);
    s["data"][key] = Str(utility::conversions::to_base64(std::vector<unsigned char>(value.begin(), value.end())));
    Create(kSecrets, s);
  }
  void CreateClaim(const std::string& name) {
    Json c = Json::object();
    c["apiVersion"] = Str("v1");
    c["kind"] = Str("PersistentVolumeClaim");
    c["metadata"]["name"] = Str(name);
    c["spec"]["accessModes"][0] = Str("ReadWriteOnce");
    c["spec"]["resources"]["requests"]["storage"] = Str("1Gi");
    Create(kClaims, c);
  }
  Json Pod(const std::string& name) { return server_.CallJson("GET", kPods.Path(kNs, name)); }
  static bool IsReady(const Json& pod) {
    const Json* conditions = kube::GetField(pod, {"status", "conditions"});
    if (conditions == nullptr || !conditions->is_array()) return false;
    for (const auto& c : conditions->as_array()) {
      if (kube::GetString(c, {"type"}) == "Ready") return kube::GetString(c, {"status"}) == "True";
    }
    return false;
  }
  static const Json& Container(const Json& pod) {
    static const Json kNone = Json::object();
    const Json* statuses = kube::GetField(pod, {"status", "containerStatuses"});
    return statuses != nullptr && statuses->is_array() && statuses->size() > 0 ? statuses->as_array().at(0) : kNone;
  }
  bool WaitReady(const std::string& name, milliseconds timeout = seconds(10)) {
    return WaitFor([&] { return IsReady(Pod(name)); }, timeout);
  }
  std::string Read(const std::string& path) { return ReadFile(path).ok() ? *ReadFile(path) : "<missing>"; }
  std::string Log(const std::string& pod) { return Read(kubelet_->PodDir(kNs, pod) + "/container.log"); }
  std::string PodVolume(const std::string& pod, const std::string& volume) {
    return kubelet_->PodDir(kNs, pod) + "/volumes/" + volume;
  }
  // The instance Pod's ids (999) are the host's postgres user, as the
  // operator e2e tests map them.
  void MapToPostgres() {
    struct passwd* pw = getpwnam("postgres");
    ASSERT_NE(pw, nullptr) << "the OS user postgres is needed";
    postgresUid_ = pw->pw_uid;
    postgresGid_ = pw->pw_gid;
    postgresHome_ = pw->pw_dir;
    options_.uidMap[999] = postgresUid_;
    options_.gidMap[999] = postgresGid_;
  }
  void Mount(Json& pod, int index, const std::string& volume, const std::string& path, bool readOnly = false) {
    Json& m = pod["spec"]["containers"][0]["volumeMounts"][index];
    m["name"] = Str(volume);
    m["mountPath"] = Str(path);
    if (readOnly) m["readOnly"] = Json::boolean(true);
  }
  static void RunAs999(Json& pod) {
    pod["spec"]["securityContext"]["runAsUser"] = Json::number(999);
    pod["spec"]["securityContext"]["runAsGroup"] = Json::number(999);
    pod["spec"]["securityContext"]["fsGroup"] = Json::number(999);
  }

  uid_t postgresUid_ = 0;
  gid_t postgresGid_ = 0;
  std::string postgresHome_;

  static ApiServerOptions ServerOptions() {
    ApiServerOptions options;
    options.minTokenExpiration = seconds(1);  // short-lived Pod tokens
    return options;
  }

  ApiServer server_{ServerOptions()};
  TempDir tmp_;
  KubeletOptions options_;
  std::unique_ptr<ProcessKubelet> kubelet_;
};

TEST_F(KubeletTest, PodRunsWithItsEnvSecretAndClaimThenRestartsAndGoesAway) {
  CreateSecret("creds", "password", "s3cret");
  CreateClaim("data-1");
  std::string dataMount = tmp_.path() + "/mnt/data";   // made on the host by the kubelet
  std::string credsMount = tmp_.path() + "/mnt/creds";
  Json pod = ShellPod(
      "web-1",
      "echo $(POD_NAME) > data/name; echo \"$PASSWORD\" > data/password; cat " + credsMount +
          "/password > data/mounted; echo '$$(POD_NAME)' > data/escaped;"
          "touch " + credsMount + "/x 2>/dev/null || echo ro > data/readonly;"
          "cat /var/run/secrets/kubernetes.io/serviceaccount/token > data/token;"
          "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace > data/namespace;"
          "exec /usr/bin/python3 -m http.server --bind $(POD_IP) 8000");
  pod["spec"]["automountServiceAccountToken"] = Json::boolean(true);
  Json& c = pod["spec"]["containers"][0];
  c["workingDir"] = Str(tmp_.path() + "/mnt");
  c["env"][2] = EnvSecret("PASSWORD", "creds", "password");
  c["ports"][0]["name"] = Str("http");
  c["ports"][0]["containerPort"] = Json::number(8000);
  c["readinessProbe"]["httpGet"]["path"] = Str("/");
  c["readinessProbe"]["httpGet"]["port"] = Str("http");
  c["readinessProbe"]["periodSeconds"] = Json::number(1);
  c["livenessProbe"]["tcpSocket"]["port"] = Json::number(8000);
  c["livenessProbe"]["periodSeconds"] = Json::number(1);
  c["livenessProbe"]["failureThreshold"] = Json::number(5);
  c["volumeMounts"][0]["name"] = Str("data");
  c["volumeMounts"][0]["mountPath"] = Str(dataMount);
  c["volumeMounts"][1]["name"] = Str("creds");
  c["volumeMounts"][1]["mountPath"] = Str(credsMount);
  c["volumeMounts"][1]["readOnly"] = Json::boolean(true);
  pod["spec"]["volumes"][0]["name"] = Str("data");
  pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = Str("data-1");
  pod["spec"]["volumes"][1]["name"] = Str("creds");
  pod["spec"]["volumes"][1]["secret"]["secretName"] = Str("creds");
  pod["spec"]["volumes"][1]["secret"]["defaultMode"] = Json::number(0400);
  StartKubelet();
  Create(kPods, pod);

  ASSERT_TRUE(WaitReady("web-1")) << Pod("web-1").serialize() << Read(kubelet_->PodDir(kNs, "web-1") + "/container.log");
  Json running = Pod("web-1");
  EXPECT_EQ(kube::GetString(running, {"status", "phase"}), "Running");
  std::string ip = kube::GetString(running, {"status", "podIP"});
  EXPECT_EQ(ip.rfind("127.", 0), 0u) << ip;
  EXPECT_EQ(ip, kubelet_->PodIp(kNs, "web-1"));
  EXPECT_EQ(kube::GetString(running, {"status", "hostIP"}), "127.0.0.1");
  EXPECT_TRUE(kube::GetField(Container(running), {"state", "running", "startedAt"}) != nullptr);
  EXPECT_TRUE(kube::GetField(Container(running), {"ready"})->as_bool());
  EXPECT_EQ(kube::GetString(kube::GetField(running, {"status", "podIPs"})->as_array().at(0), {"ip"}), ip);
  auto claim = server_.CallJson("GET", kClaims.Path(kNs, "data-1"));
  EXPECT_EQ(kube::GetString(claim, {"status", "phase"}), "Bound");

  // What the container wrote into its claim, seen from the host.
  std::string volume = kubelet_->VolumeDir(kNs, "data-1");
  EXPECT_EQ(Read(volume + "/name"), "web-1\n");
  EXPECT_EQ(Read(volume + "/password"), "s3cret\n");
  EXPECT_EQ(Read(volume + "/mounted"), "s3cret");
  EXPECT_EQ(Read(volume + "/escaped"), "$(POD_NAME)\n");
  EXPECT_EQ(Read(volume + "/readonly"), "ro\n");
  // The token is the Pod's own, from TokenRequest, not the kubelet's.
  std::string token = Read(volume + "/token");
  EXPECT_NE(token, "pod-token-123");
  EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2) << token;  // a JWT in shape
  EXPECT_EQ(kube::GetString(running, {"spec", "nodeName"}), "process-node");  // bound by the kubelet
  EXPECT_EQ(Read(volume + "/namespace"), "default");
  struct stat st;
  ASSERT_EQ(stat((kubelet_->PodDir(kNs, "web-1") + "/volumes/creds/password").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  // The mounts live in the Pod's mount namespace only: the host's mount
  // points stay empty.
  ASSERT_TRUE(IsDirectory(dataMount));
  EXPECT_TRUE(ListDirectory(dataMount).empty());
  EXPECT_TRUE(ListDirectory(credsMount).empty());
  pid_t pid = kubelet_->PodPid(kNs, "web-1");
  ASSERT_GT(pid, 0);
  char own[128] = {}, theirs[128] = {};
  ASSERT_GT(readlink("/proc/self/ns/mnt", own, sizeof(own) - 1), 0);
  ASSERT_GT(readlink(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), theirs, sizeof(theirs) - 1), 0);
  EXPECT_STRNE(own, theirs);

  // A killed container is restarted (backoff 1 s) and becomes ready again.
  kill(pid, SIGKILL);
  ASSERT_TRUE(WaitFor([&] {
    Json p = Pod("web-1");
    return kube::GetInt(Container(p), {"restartCount"}).value_or(0) == 1 && IsReady(p);
  }, seconds(15))) << Pod("web-1").serialize();
  Json restarted = Pod("web-1");
  EXPECT_EQ(kube::GetInt(Container(restarted), {"lastState", "terminated", "exitCode"}).value_or(0), 137);
  EXPECT_EQ(kube::GetString(restarted, {"status", "podIP"}), ip);  // the address stays the Pod's
  pid_t second = kubelet_->PodPid(kNs, "web-1");
  EXPECT_NE(second, pid);
  EXPECT_GT(second, 0);
  std::string podDir = kubelet_->PodDir(kNs, "web-1");

  // Deleting the Pod ends its process and removes its directory; the claim's
  // directory stays until the claim goes.
  ASSERT_EQ(server_.Call("DELETE", kPods.Path(kNs, "web-1")).status, 200);
  ASSERT_TRUE(WaitFor([&] { return !ProcessExists(second) && !PathExists(podDir); })) << podDir;
  EXPECT_EQ(Read(volume + "/name"), "web-1\n");
  ASSERT_EQ(server_.Call("DELETE", kClaims.Path(kNs, "data-1")).status, 200);
  EXPECT_TRUE(WaitFor([&] { return !PathExists(volume); })) << volume;
}

TEST_F(KubeletTest, TwoPodsGetDifferentAddressesAndStopLeavesThePods) {
  options_.stopGrace = seconds(2);
  StartKubelet();
  Create(kPods, ShellPod("a", "echo $(POD_IP) > /dev/null; exec sleep 60"));
  Create(kPods, ShellPod("b", "exec sleep 60"));
  ASSERT_TRUE(WaitReady("a"));
  ASSERT_TRUE(WaitReady("b"));
  std::string ipA = kube::GetString(Pod("a"), {"status", "podIP"});
  std::string ipB = kube::GetString(Pod("b"), {"status", "podIP"});
  EXPECT_EQ(ipA.rfind("127.0.77.", 0), 0u) << ipA;
  EXPECT_EQ(ipB.rfind("127.0.77.", 0), 0u) << ipB;
  EXPECT_NE(ipA, ipB);
  pid_t a = kubelet_->PodPid(kNs, "a"), b = kubelet_->PodPid(kNs, "b");
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  kubelet_->Stop();
  EXPECT_FALSE(ProcessExists(a));
  EXPECT_FALSE(ProcessExists(b));
  // A node that goes down deletes nothing.
  EXPECT_FALSE(Pod("a").is_null());
  EXPECT_FALSE(Pod("b").is_null());
}

// A cordoned node (the first step of `kubectl drain`) runs what it runs and
// takes nothing new until it is uncordoned.
TEST_F(KubeletTest, ACordonedNodeLeavesNewPodsPendingUntilUncordoned) {
  StartKubelet();
  Create(kPods, ShellPod("before", "exec sleep 60"));
  ASSERT_TRUE(WaitReady("before"));
  kubelet_->Cordon(true);
  Create(kPods, ShellPod("after", "exec sleep 60"));
  // Not placed: no node, no address, no process, for as long as we look.
  EXPECT_FALSE(WaitFor([&] {
    return !kube::GetString(Pod("after"), {"spec", "nodeName"}).empty() || kubelet_->PodPid(kNs, "after") > 0;
  }, milliseconds(1500)));
  EXPECT_EQ(kube::GetString(Pod("after"), {"status", "podIP"}), "");
  EXPECT_GT(kubelet_->PodPid(kNs, "before"), 0) << "what runs goes on";
  kubelet_->Cordon(false);
  EXPECT_TRUE(WaitReady("after"));
}

TEST_F(KubeletTest, MissingSecretWaitsWithConfigErrorThenRunsAndANamesakeStartsAfresh) {
  StartKubelet();
  Json pod = ShellPod("late", "exec sleep 60");
  pod["spec"]["containers"][0]["env"][2] = EnvSecret("PASSWORD", "late-secret", "password");
  Create(kPods, pod);
  ASSERT_TRUE(WaitFor([&] {
    return kube::GetString(Container(Pod("late")), {"state", "waiting", "reason"}) == "CreateContainerConfigError";
  })) << Pod("late").serialize();
  EXPECT_EQ(kube::GetString(Pod("late"), {"status", "phase"}), "Pending");
  EXPECT_EQ(kubelet_->PodPid(kNs, "late"), -1);
  CreateSecret("late-secret", "password", "x");
  ASSERT_TRUE(WaitReady("late")) << Pod("late").serialize();
  pid_t first = kubelet_->PodPid(kNs, "late");
  EXPECT_GT(first, 0);

  // The same name again is a new Pod: new UID, new directory, a fresh run.
  std::string firstDir = kubelet_->PodDir(kNs, "late");
  // Force-deleted (grace 0), the name is free at once.
  ASSERT_EQ(server_.Call("DELETE", kPods.Path(kNs, "late") + "?gracePeriodSeconds=0").status, 200);
  Create(kPods, pod);
  ASSERT_TRUE(WaitFor([&] {
    Json p = Pod("late");
    return IsReady(p) && kubelet_->PodDir(kNs, "late") != firstDir && kubelet_->PodPid(kNs, "late") > 0;
  })) << Pod("late").serialize();
  // The old Pod's process ends on its own schedule (SIGTERM, then its exit).
  EXPECT_TRUE(WaitFor([&] { return !ProcessExists(first); })) << "pid " << first;
  EXPECT_EQ(kube::GetInt(Container(Pod("late")), {"restartCount"}).value_or(-1), 0);
  EXPECT_NE(kubelet_->PodDir(kNs, "late").find(kube::UidOf(Pod("late"))), std::string::npos);
}

TEST_F(KubeletTest, FailedLivenessProbeRestartsAndNeverPolicyEndsThePod) {
  StartKubelet();
  Json pod = ShellPod("deaf", "exec sleep 60");  // listens nowhere
  Json& c = pod["spec"]["containers"][0];
  c["livenessProbe"]["tcpSocket"]["port"] = Json::number(8000);
  c["livenessProbe"]["periodSeconds"] = Json::number(1);
  c["livenessProbe"]["failureThreshold"] = Json::number(1);
  pod["spec"]["terminationGracePeriodSeconds"] = Json::number(1);
  Create(kPods, pod);
  Json once = ShellPod("once", "exit 3");
  once["spec"]["restartPolicy"] = Str("Never");
  Create(kPods, once);
  EXPECT_TRUE(WaitFor([&] { return kube::GetInt(Container(Pod("deaf")), {"restartCount"}).value_or(0) >= 1; },
                      seconds(10)))
      << Pod("deaf").serialize();
  ASSERT_TRUE(WaitFor([&] { return kube::GetString(Pod("once"), {"status", "phase"}) == "Failed"; }))
      << Pod("once").serialize();
  EXPECT_EQ(kube::GetInt(Container(Pod("once")), {"state", "terminated", "exitCode"}).value_or(0), 3);
  EXPECT_EQ(kube::GetInt(Container(Pod("once")), {"restartCount"}).value_or(-1), 0);
}

TEST_F(KubeletTest, GracefulDeletionKillsWhatIgnoresSigtermAndKillAllLeavesThePods) {
  options_.maxGrace = seconds(1);
  StartKubelet();
  // Ignores SIGTERM, and leaves a child outside its process group.
  std::string scratch = tmp_.path() + "/mnt/scratch";
  Json pod = ShellPod("stubborn", "trap '' TERM; setsid sleep 300 & echo $! > " + scratch +
                                      "/child; while true; do sleep 0.1; done");
  pod["metadata"]["finalizers"][0] = Str("test.pgrs.dev/hold");
  pod["spec"]["containers"][0]["volumeMounts"][0]["name"] = Str("scratch");
  pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = Str(scratch);
  pod["spec"]["volumes"][0]["name"] = Str("scratch");
  pod["spec"]["volumes"][0]["emptyDir"] = Json::object();
  Create(kPods, pod);
  Create(kPods, ShellPod("crash", "exec sleep 60"));
  ASSERT_TRUE(WaitReady("stubborn"));
  ASSERT_TRUE(WaitReady("crash"));
  std::string childFile = kubelet_->PodDir(kNs, "stubborn") + "/volumes/scratch/child";
  ASSERT_TRUE(WaitFor([&] { return std::atoi(Read(childFile).c_str()) > 0; })) << Read(childFile);
  pid_t child = std::atoi(Read(childFile).c_str());
  pid_t main = kubelet_->PodPid(kNs, "stubborn");
  ASSERT_TRUE(ProcessExists(child));

  // With a finalizer the Pod only gets a deletionTimestamp: the kubelet ends
  // it after the grace period (capped at 1 s), the escaped child included.
  ASSERT_EQ(server_.Call("DELETE", kPods.Path(kNs, "stubborn")).status, 200);
  auto deleted = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return !ProcessExists(main) && !ProcessExists(child); }, seconds(10)));
  EXPECT_GE(std::chrono::steady_clock::now() - deleted, milliseconds(900));  // SIGTERM was ignored
  EXPECT_FALSE(kube::GetString(Pod("stubborn"), {"metadata", "deletionTimestamp"}).empty());

  // A node crash: SIGKILL, and the API objects are left as they were.
  pid_t crash = kubelet_->PodPid(kNs, "crash");
  ASSERT_GT(crash, 0);
  kubelet_->KillAll();
  EXPECT_FALSE(ProcessExists(crash));
  EXPECT_EQ(kube::GetString(Pod("crash"), {"status", "phase"}), "Running");
  EXPECT_TRUE(IsReady(Pod("crash")));
}


// "CapBnd:\t00000000a80425fb" -> "00000000a80425fb" (tabs become spaces).
std::string StatusLine(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::string value = line.substr(key.size() + 1);
    for (auto& c : value) c = c == '\t' ? ' ' : c;
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of(' ') + 1);
    return value;
  }
  return "<no " + key + ">";
}

std::string CapabilityMask(std::initializer_list<int> caps) {
  uint64_t mask = 0;
  for (int c : caps) mask |= uint64_t{1} << c;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(mask));
  return buf;
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}
gid_t GroupOf(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_gid : static_cast<gid_t>(-1);
}
uid_t OwnerOf(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

TEST_F(KubeletTest, SecurityContextSetsUserGroupsCapabilitiesAndNoNewPrivsAsARuntimeDoes) {
  MapToPostgres();
  StartKubelet();
  const std::string out = tmp_.path() + "/mnt/out";
  const std::string report = "cat /proc/self/status > " + out + "/status; echo \"$HOME\" > " + out + "/home;";

  // The instance Pod's shape: 999:999, fsGroup 999, no capabilities, no
  // privilege escalation. An exec probe runs as the container does: its
  // user, its mount namespace (the report exists only there).
  Json nonRoot = ShellPod("nonroot", report + "exec sleep 60");
  RunAs999(nonRoot);
  nonRoot["spec"]["securityContext"]["runAsNonRoot"] = Json::boolean(true);
  nonRoot["spec"]["securityContext"]["supplementalGroups"][0] = Json::number(4242);
  Json& c = nonRoot["spec"]["containers"][0];
  c["securityContext"]["allowPrivilegeEscalation"] = Json::boolean(false);
  c["securityContext"]["capabilities"]["drop"][0] = Str("ALL");
  c["readinessProbe"]["exec"]["command"][0] = Str("/bin/sh");
  c["readinessProbe"]["exec"]["command"][1] = Str("-c");
  c["readinessProbe"]["exec"]["command"][2] =
      Str("[ \"$(id -u):$(id -g)\" = " + std::to_string(postgresUid_) + ":" + std::to_string(postgresGid_) +
          " ] && [ -s " + out + "/status ] && grep -q 'NoNewPrivs:.*1' /proc/self/status");
  c["readinessProbe"]["periodSeconds"] = Json::number(1);
  Mount(nonRoot, 0, "out", out);
  nonRoot["spec"]["volumes"][0]["name"] = Str("out");
  nonRoot["spec"]["volumes"][0]["emptyDir"] = Json::object();
  Create(kPods, nonRoot);

  // The container's own runAsUser wins over the Pod's; a root container
  // keeps the runtime's default capabilities, less the dropped, plus the added.
  Json root = ShellPod("root", report + "exec sleep 60");
  root["spec"]["securityContext"]["runAsUser"] = Json::number(999);
  Json& rc = root["spec"]["containers"][0];
  rc["securityContext"]["runAsUser"] = Json::number(0);
  rc["securityContext"]["capabilities"]["drop"][0] = Str("NET_RAW");
  rc["securityContext"]["capabilities"]["drop"][1] = Str("cap_sys_chroot");
  rc["securityContext"]["capabilities"]["add"][0] = Str("CAP_NET_ADMIN");
  Mount(root, 0, "out", out);
  root["spec"]["volumes"][0]["name"] = Str("out");
  root["spec"]["volumes"][0]["emptyDir"] = Json::object();
  Create(kPods, root);

  // runAsNonRoot without a runAsUser: the "image" runs as root.
  Json refused = ShellPod("refused", "exec sleep 60");
  refused["spec"]["securityContext"]["runAsNonRoot"] = Json::boolean(true);
  Create(kPods, refused);

  ASSERT_TRUE(WaitReady("nonroot")) << Pod("nonroot").serialize() << Log("nonroot");
  std::string status = Read(PodVolume("nonroot", "out") + "/status");
  std::string uid = std::to_string(postgresUid_), gid = std::to_string(postgresGid_);
  EXPECT_EQ(StatusLine(status, "Uid"), uid + " " + uid + " " + uid + " " + uid) << status;
  EXPECT_EQ(StatusLine(status, "Gid"), gid + " " + gid + " " + gid + " " + gid);
  EXPECT_EQ(StatusLine(status, "Groups"), postgresGid_ < 4242 ? gid + " 4242" : "4242 " + gid);
  EXPECT_EQ(StatusLine(status, "CapBnd"), CapabilityMask({}));
  EXPECT_EQ(StatusLine(status, "CapEff"), CapabilityMask({}));
  EXPECT_EQ(StatusLine(status, "CapInh"), CapabilityMask({}));
  EXPECT_EQ(StatusLine(status, "CapAmb"), CapabilityMask({}));
  EXPECT_EQ(StatusLine(status, "NoNewPrivs"), "1");
  EXPECT_EQ(Read(PodVolume("nonroot", "out") + "/home"), postgresHome_ + "\n");
  // The emptyDir got the fsGroup: 0777 | setgid, group 999 -> postgres.
  EXPECT_EQ(GroupOf(PodVolume("nonroot", "out")), postgresGid_);
  EXPECT_EQ(ModeOf(PodVolume("nonroot", "out")), 02777u);

  ASSERT_TRUE(WaitReady("root")) << Pod("root").serialize() << Log("root");
  status = Read(PodVolume("root", "out") + "/status");
  // containerd's defaults: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
  // SETUID SETPCAP NET_BIND_SERVICE (NET_RAW) (SYS_CHROOT) MKNOD AUDIT_WRITE SETFCAP.
  std::string expected = CapabilityMask({0, 1, 3, 4, 5, 6, 7, 8, 10, 12 /* NET_ADMIN */, 27, 29, 31});
  EXPECT_EQ(StatusLine(status, "Uid"), "0 0 0 0") << status;
  EXPECT_EQ(StatusLine(status, "Gid"), "0 0 0 0");
  EXPECT_EQ(StatusLine(status, "Groups"), "0");
  EXPECT_EQ(StatusLine(status, "CapBnd"), expected);
  EXPECT_EQ(StatusLine(status, "CapEff"), expected);
  EXPECT_EQ(StatusLine(status, "NoNewPrivs"), "0");
  EXPECT_EQ(Read(PodVolume("root", "out") + "/home"), "/root\n");

  ASSERT_TRUE(WaitFor([&] {
    return kube::GetString(Container(Pod("refused")), {"state", "waiting", "reason"}) == "CreateContainerConfigError";
  })) << Pod("refused").serialize();
  std::string message = kube::GetString(Container(Pod("refused")), {"state", "waiting", "message"});
  EXPECT_EQ(message, "container has runAsNonRoot and image will run as root (pod: \"refused_default(" +
                         kube::UidOf(Pod("refused")) + ")\", container: main)");
  EXPECT_EQ(kubelet_->PodPid(kNs, "refused"), -1);
}

// What a real node does to a recreated instance Pod: the kubelet applies
// fsGroup to the claim at every Pod start (policy Always), and PostgreSQL's
// 0700 data directory becomes 2770. A container restart in place does not.
TEST_F(KubeletTest, FsGroupOwnershipIsAppliedToAClaimAtEveryPodStartUnlessOnRootMismatch) {
  MapToPostgres();
  CreateClaim("data");
  StartKubelet();
  const std::string mnt = tmp_.path() + "/mnt/data";
  auto pod = [&](const std::string& policy) {
    Json p = ShellPod("pg", "[ -d " + mnt + "/pgdata ] || { mkdir " + mnt + "/pgdata && chmod 00700 " + mnt +
                                "/pgdata && echo x > " + mnt + "/pgdata/file && chmod 0600 " + mnt +
                                "/pgdata/file; }; echo run >> " + mnt + "/runs; exec sleep 60");
    RunAs999(p);
    if (!policy.empty()) p["spec"]["securityContext"]["fsGroupChangePolicy"] = Str(policy);
    p["spec"]["terminationGracePeriodSeconds"] = Json::number(1);
    Mount(p, 0, "data", mnt);
    p["spec"]["volumes"][0]["name"] = Str("data");
    p["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = Str("data");
    return p;
  };
  const std::string volume = kubelet_->VolumeDir(kNs, "data");
  const std::string pgdata = volume + "/pgdata";
  auto runs = [&] {
    std::string text = Read(volume + "/runs");
    return text == "<missing>" ? 0 : static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  };
  auto recreate = [&](const std::string& policy, int wantRuns) {
    pid_t old = kubelet_->PodPid(kNs, "pg");
    std::string oldDir = kubelet_->PodDir(kNs, "pg");
    ASSERT_EQ(server_.Call("DELETE", kPods.Path(kNs, "pg")).status, 200);
    ASSERT_TRUE(WaitFor([&] { return !ProcessExists(old) && !PathExists(oldDir); })) << "pid " << old;
    Create(kPods, pod(policy));
    ASSERT_TRUE(WaitFor([&] { return IsReady(Pod("pg")) && runs() == wantRuns; })) << Pod("pg").serialize();
  };

  Create(kPods, pod(""));
  ASSERT_TRUE(WaitFor([&] { return IsReady(Pod("pg")) && runs() == 1; })) << Pod("pg").serialize() << Log("pg");
  // A local PersistentVolume starts root's 0755; fsGroup made it 2775 group 999.
  EXPECT_EQ(OwnerOf(volume), 0u);
  EXPECT_EQ(GroupOf(volume), postgresGid_);
  EXPECT_EQ(ModeOf(volume), 02775u);
  EXPECT_EQ(OwnerOf(pgdata), postgresUid_);
  EXPECT_EQ(ModeOf(pgdata), 0700u);

  // Restart in place: volumes stay mounted, nothing is applied again.
  kill(kubelet_->PodPid(kNs, "pg"), SIGKILL);
  ASSERT_TRUE(WaitFor([&] {
    return kube::GetInt(Container(Pod("pg")), {"restartCount"}).value_or(0) == 1 && IsReady(Pod("pg")) && runs() == 2;
  }, seconds(15))) << Pod("pg").serialize();
  EXPECT_EQ(ModeOf(pgdata), 0700u);

  // The Pod made again on its claim, policy Always (the default): the walk
  // runs again, the data directory is 2770 and its file 0660.
  recreate("", 3);
  EXPECT_EQ(ModeOf(pgdata), 02770u);
  EXPECT_EQ(GroupOf(pgdata), postgresGid_);
  EXPECT_EQ(ModeOf(pgdata + "/file"), 0660u);

  // OnRootMismatch: the claim's root already has the group, rwx and setgid,
  // so nothing below it is touched.
  ASSERT_EQ(chmod(pgdata.c_str(), 0700), 0);
  ASSERT_EQ(chmod((pgdata + "/file").c_str(), 0600), 0);
  recreate("OnRootMismatch", 4);
  EXPECT_EQ(ModeOf(pgdata), 0700u);
  EXPECT_EQ(ModeOf(pgdata + "/file"), 0600u);
  EXPECT_EQ(ModeOf(volume), 02775u);
}

TEST_F(KubeletTest, NonRootContainerReadsItsMode0400SecretThroughFsGroupAndHostPathIsLeftAlone) {
  MapToPostgres();
  CreateSecret("creds", "password", "s3cret");
  const std::string host = tmp_.path() + "/host";
  ASSERT_TRUE(MakeDirs(host, 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(host + "/file", "root only", 0600).ok());
  StartKubelet();
  const std::string creds = tmp_.path() + "/mnt/creds", out = tmp_.path() + "/mnt/out",
                    hostMount = tmp_.path() + "/mnt/host";
  const std::string token = "/var/run/secrets/kubernetes.io/serviceaccount";
  Json pod = ShellPod("reader", "cat " + creds + "/password > " + out + "/read 2>&1; cat " + hostMount +
                                    "/file > " + out + "/host 2>&1; stat -c %g " + token + "/namespace > " + out +
                                    "/tokengroup 2>&1; exec sleep 60");
  RunAs999(pod);
  pod["spec"]["automountServiceAccountToken"] = Json::boolean(true);
  Mount(pod, 0, "creds", creds, true);
  Mount(pod, 1, "out", out);
  Mount(pod, 2, "host", hostMount);
  pod["spec"]["volumes"][0]["name"] = Str("creds");
  pod["spec"]["volumes"][0]["secret"]["secretName"] = Str("creds");
  pod["spec"]["volumes"][0]["secret"]["defaultMode"] = Json::number(0400);
  pod["spec"]["volumes"][1]["name"] = Str("out");
  pod["spec"]["volumes"][1]["emptyDir"] = Json::object();
  pod["spec"]["volumes"][2]["name"] = Str("host");
  pod["spec"]["volumes"][2]["hostPath"]["path"] = Str(host);
  Create(kPods, pod);

  ASSERT_TRUE(WaitReady("reader")) << Pod("reader").serialize() << Log("reader");
  ASSERT_TRUE(WaitFor([&] { return Read(PodVolume("reader", "out") + "/tokengroup") != "<missing>"; }));
  EXPECT_EQ(Read(PodVolume("reader", "out") + "/read"), "s3cret");
  // defaultMode 0400 became 0440 group 999: root's file, readable through fsGroup.
  std::string secretFile = PodVolume("reader", "creds") + "/password";
  EXPECT_EQ(ModeOf(secretFile), 0440u);
  EXPECT_EQ(OwnerOf(secretFile), 0u);
  EXPECT_EQ(GroupOf(secretFile), postgresGid_);
  EXPECT_EQ(Read(PodVolume("reader", "out") + "/tokengroup"), std::to_string(postgresGid_) + "\n");
  // hostPath volumes get no ownership: still root's 0600, not readable.
  EXPECT_EQ(ModeOf(host + "/file"), 0600u);
  EXPECT_EQ(GroupOf(host + "/file"), 0u);
  EXPECT_EQ(ModeOf(host), 0700u);
  EXPECT_NE(Read(PodVolume("reader", "out") + "/host").find("Permission denied"), std::string::npos)
      << Read(PodVolume("reader", "out") + "/host");
}

TEST_F(KubeletTest, ReadOnlyRootFilesystemLeavesOnlyTheVolumesWritable) {
  StartKubelet();
  const std::string out = tmp_.path() + "/mnt/out", outside = tmp_.path() + "/outside";
  Json pod = ShellPod("ro", "echo x 2> " + out + "/error > " + outside + "; echo x > /dev/null && echo ok > " + out +
                                "/inside; exec sleep 60");
  pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = Json::boolean(true);
  Mount(pod, 0, "out", out);
  pod["spec"]["volumes"][0]["name"] = Str("out");
  pod["spec"]["volumes"][0]["emptyDir"] = Json::object();
  Create(kPods, pod);

  ASSERT_TRUE(WaitReady("ro")) << Pod("ro").serialize() << Log("ro");
  ASSERT_TRUE(WaitFor([&] { return Read(PodVolume("ro", "out") + "/inside") == "ok\n"; }))
      << Read(PodVolume("ro", "out") + "/inside") << Log("ro");
  EXPECT_NE(Read(PodVolume("ro", "out") + "/error").find("Read-only file system"), std::string::npos)
      << Read(PodVolume("ro", "out") + "/error");
  EXPECT_FALSE(PathExists(outside));
  // The host's file system is as writable as before.
  ASSERT_TRUE(WriteFileAtomic(outside, "host", 0644).ok());
  struct statvfs fs;
  ASSERT_EQ(statvfs(tmp_.path().c_str(), &fs), 0);
  EXPECT_EQ(fs.f_flag & ST_RDONLY, 0u);
}


// Several kubelets on one host (tests running at the same time) share the
// host paths of mount points: one that stops must not rmdir a directory
// another's Pod has a mount on (that would unmount it there).
TEST_F(KubeletTest, StopKeepsAMountPointThatAnotherMountNamespaceUses) {
  StartKubelet();
  const std::string target = tmp_.path() + "/mnt/shared";
  Json pod = ShellPod("user", "exec sleep 60");
  Mount(pod, 0, "scratch", target);
  pod["spec"]["volumes"][0]["name"] = Str("scratch");
  pod["spec"]["volumes"][0]["emptyDir"] = Json::object();
  Create(kPods, pod);
  ASSERT_TRUE(WaitReady("user"));
  ASSERT_TRUE(IsDirectory(target));  // made by the kubelet

  // Another "kubelet's Pod": a process with a mount on the same path.
  const std::string source = tmp_.path() + "/other-source";
  ASSERT_TRUE(MakeDirs(source).ok());
  ProcessSpec other;
  other.argv = {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                "mount --bind " + source + " " + target + " && exec sleep 60"};
  auto pid = SpawnProcess(other);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGKILL);
      int status;
      waitpid(pid, &status, 0);
    }
  } reap{*pid};
  auto mounted = [&] { return Read("/proc/" + std::to_string(*pid) + "/mountinfo").find(" " + target + " ") != std::string::npos; };
  ASSERT_TRUE(WaitFor(mounted));

  kubelet_->Stop();
  EXPECT_TRUE(IsDirectory(target));
  EXPECT_TRUE(mounted());
}

TEST_F(KubeletTest, GracefulDeletionSendsSigtermToTheMainProcessThenTheObjectGoesWithItsFinalStatus) {
  StartKubelet();
  // The marker outlives the Pod's directory: a hostPath volume.
  std::string markers = tmp_.path() + "/markers";
  ASSERT_TRUE(MakeDirs(markers).ok());
  std::string mount = tmp_.path() + "/mnt/markers";
  Json pod = ShellPod("polite", "trap 'echo term > " + mount + "/marker; exit 0' TERM; while true; do sleep 0.1; done");
  pod["spec"]["containers"][0]["volumeMounts"][0]["name"] = Str("markers");
  pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = Str(mount);
  pod["spec"]["volumes"][0]["name"] = Str("markers");
  pod["spec"]["volumes"][0]["hostPath"]["path"] = Str(markers);
  Create(kPods, pod);
  ASSERT_TRUE(WaitReady("polite"));
  EXPECT_EQ(kube::GetString(Pod("polite"), {"spec", "nodeName"}), "process-node");
  pid_t main = kubelet_->PodPid(kNs, "polite");
  ASSERT_GT(main, 0);

  // The last state of the object, as its DELETED event carries it.
  Json last = Json::null();
  std::mutex mu;
  kube::WatchCanceller canceller;
  auto client = PlainClient(server_);
  std::thread watcher([&] {
    kube::WatchOptions options;
    options.resourceVersion = kube::ResourceVersionOf(Pod("polite"));
    client->Watch(kPods, kNs, options, [&](const kube::WatchEvent& e) {
      if (e.type != "DELETED") return;
      std::lock_guard<std::mutex> lock(mu);
      last = e.object;
      canceller.Cancel();
    }, &canceller);
  });

  ApiResponse deleted = server_.Call("DELETE", kPods.Path(kNs, "polite"));
  ASSERT_EQ(deleted.status, 200);
  Json terminating = *kube::ParseJson(deleted.body);
  EXPECT_EQ(kube::GetInt(terminating, {"metadata", "deletionGracePeriodSeconds"}).value_or(-1), 30);
  EXPECT_FALSE(kube::GetString(terminating, {"metadata", "deletionTimestamp"}).empty());
  // The trap runs, the container exits 0, the kubelet deletes the object.
  EXPECT_TRUE(WaitFor([&] { return Pod("polite").is_null(); }, seconds(10))) << Pod("polite").serialize();
  EXPECT_EQ(Read(markers + "/marker"), "term\n");
  EXPECT_FALSE(ProcessExists(main));
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !last.is_null();
  }));
  canceller.Cancel();
  watcher.join();
  EXPECT_EQ(kube::GetString(last, {"status", "phase"}), "Succeeded") << last.serialize();
  EXPECT_EQ(kube::GetInt(Container(last), {"state", "terminated", "exitCode"}).value_or(-1), 0) << last.serialize();
  EXPECT_FALSE(IsReady(last));
}

TEST_F(KubeletTest, ThePodTokenIsRenewedInPlaceSeenByTheContainerAndAcceptedByTheServer) {
  server_.SetTokens({"pod-token-123"});  // authentication required: the kubelet's token, and issued ones
  options_.tokenExpiration = seconds(2);
  StartKubelet();
  std::string copies = tmp_.path() + "/copies";
  ASSERT_TRUE(MakeDirs(copies).ok());
  std::string mount = tmp_.path() + "/mnt/copies";
  Json pod = ShellPod("reader", "while true; do cat /var/run/secrets/kubernetes.io/serviceaccount/token > " + mount +
                                    "/t.tmp && mv " + mount + "/t.tmp " + mount + "/token; sleep 0.1; done");
  pod["spec"]["automountServiceAccountToken"] = Json::boolean(true);
  pod["spec"]["containers"][0]["volumeMounts"][0]["name"] = Str("copies");
  pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = Str(mount);
  pod["spec"]["volumes"][0]["name"] = Str("copies");
  pod["spec"]["volumes"][0]["hostPath"]["path"] = Str(copies);
  Create(kPods, pod);
  ASSERT_TRUE(WaitReady("reader"));
  auto authenticates = [&](const std::string& token) {
    kube::ClientConfig config;
    config.server = server_.url();
    config.token = token;
    kube::ClientOptions clientOptions;
    clientOptions.maxAttempts = 1;
    auto client = kube::Client::Create(config, clientOptions);
    return client.ok() && (*client)->List(kSecrets, kNs).ok();
  };
  std::string first;
  ASSERT_TRUE(WaitFor([&] {
    first = Read(copies + "/token");
    return first != "<missing>" && !first.empty();
  }));
  EXPECT_TRUE(authenticates(first));
  pid_t pid = kubelet_->PodPid(kNs, "reader");

  // Within its 2 s the token is renewed (at 80%), in the same running
  // container, and the new one works.
  std::string renewed;
  ASSERT_TRUE(WaitFor([&] {
    renewed = Read(copies + "/token");
    return renewed != first && renewed != "<missing>" && !renewed.empty();
  }, seconds(5)));
  EXPECT_EQ(kubelet_->PodPid(kNs, "reader"), pid) << "the container was not restarted";
  EXPECT_TRUE(WaitFor([&] { return authenticates(Read(copies + "/token")); }));
  EXPECT_TRUE(WaitFor([&] { return !authenticates(first); }, seconds(5))) << "the first token expires";
}

}  // namespace
}  // namespace pgrs::e2e
