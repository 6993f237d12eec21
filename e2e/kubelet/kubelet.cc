#include "e2e/kubelet/kubelet.h"

#include "e2e/kubelet/security_context.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

#include "operator/util/files.h"
#include "operator/util/http.h"
#include "operator/util/process.h"

namespace pgrs::e2e {

namespace {

using kube::GetInt;
using kube::GetString;
using kube::Json;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

kube::Resource PodResource() { return {"", "v1", "pods", "Pod", true}; }
kube::Resource ClaimResource() { return {"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true}; }
kube::Resource SecretResource() { return {"", "v1", "secrets", "Secret", true}; }
kube::Resource ServiceAccountResource() { return {"", "v1", "serviceaccounts", "ServiceAccount", true}; }

std::string Now() { return kube::FormatRfc3339(std::chrono::system_clock::now()); }

std::string PodName(const std::string& ns, const std::string& name) { return ns + "/" + name; }

// Kubernetes' $(VAR) expansion: known variables are replaced, unknown
// references stay as written, `$$` is a literal `$`.
std::string Expand(const std::string& text, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size()) {
      if (text[i + 1] == '$') {
        out += '$';
        ++i;
        continue;
      }
      if (text[i + 1] == '(') {
        auto close = text.find(')', i + 2);
        if (close != std::string::npos) {
          auto it = vars.find(text.substr(i + 2, close - i - 2));
          out += it != vars.end() ? it->second : text.substr(i, close - i + 1);
          i = close;
          continue;
        }
      }
    }
    out += text[i];
  }
  return out;
}

std::optional<uint32_t> ParseIpv4(const std::string& text) {
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

std::string FormatIpv4(uint32_t ip) {
  in_addr addr{};
  addr.s_addr = htonl(ip);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, buf, sizeof(buf));
  return buf;
}

std::vector<std::string> StringArray(const Json& object, const char* field) {
  std::vector<std::string> out;
  const Json* array = kube::GetField(object, {field});
  if (array == nullptr || !array->is_array()) return out;
  for (const auto& v : array->as_array()) out.push_back(v.is_string() ? v.as_string() : v.serialize());
  return out;
}

const Json& Field(const Json& object, std::initializer_list<const char*> path) {
  static const Json kNull = Json::null();
  const Json* f = kube::GetField(object, path);
  return f != nullptr ? *f : kNull;
}

bool GetBool(const Json& object, std::initializer_list<const char*> path, bool fallback) {
  const Json* f = kube::GetField(object, path);
  return f != nullptr && f->is_boolean() ? f->as_bool() : fallback;
}

// The value of a Secret's (base64 `data`, or `stringData` as a test may
// store it) or a ConfigMap's key.
std::optional<std::string> KeyOfData(const Json& object, const std::string& key, bool base64) {
  if (const Json* data = kube::GetField(object, {"data"}); data != nullptr && data->is_object() &&
                                                            data->has_string_field(key)) {
    if (!base64) return data->at(key).as_string();
    try {
      auto bytes = utility::conversions::from_base64(data->at(key).as_string());
      return std::string(bytes.begin(), bytes.end());
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (const Json* data = kube::GetField(object, {"stringData"}); data != nullptr && data->is_object() &&
                                                                  data->has_string_field(key)) {
    return data->at(key).as_string();
  }
  return std::nullopt;
}

std::vector<std::string> KeysOfData(const Json& object) {
  std::vector<std::string> keys;
  for (const char* field : {"data", "stringData"}) {
    const Json* data = kube::GetField(object, {field});
    if (data == nullptr || !data->is_object()) continue;
    for (const auto& [k, v] : data->as_object()) keys.push_back(k);
  }
  return keys;
}

// Looks a program up in PATH as execvp would, before fork.
std::string ResolveProgram(const std::string& program, const std::string& path) {
  if (program.find('/') != std::string::npos) return program;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string candidate = JoinPath(path.substr(start, end - start), program);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return program;
}

// "https://host:port/..." -> host (without brackets) and port.
void ServiceHostPort(const std::string& server, std::string* host, std::string* port) {
  std::string rest = server;
  bool https = rest.rfind("https://", 0) == 0;
  if (auto scheme = rest.find("://"); scheme != std::string::npos) rest = rest.substr(scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  *port = https ? "443" : "80";
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    *host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') *port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    *host = rest.substr(0, colon);
    *port = rest.substr(colon + 1);
  } else {
    *host = rest;
  }
}

struct Probe {
  enum class Kind { kNone, kHttp, kTcp, kExec };
  Kind kind = Kind::kNone;
  std::string host;  // "" = the Pod IP
  int port = 0;
  std::string path = "/";
  std::string scheme = "http";
  std::vector<std::string> command;
  int initialDelaySeconds = 0;
  int periodSeconds = 10;
  int timeoutSeconds = 1;
  int failureThreshold = 3;
  int successThreshold = 1;
};

// In a child between fork and exec (async-signal-safe calls only): a
// process group of its own, death with the kubelet, and no signal mask or
// disposition inherited from the kubelet's threads.
void ChildStartsClean(pid_t parent) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  }
}

int ResolvePort(const Json& port, const Json& container) {
  if (port.is_number()) return port.as_integer();
  if (!port.is_string()) return 0;
  const std::string name = port.as_string();
  if (const Json* ports = kube::GetField(container, {"ports"}); ports != nullptr && ports->is_array()) {
    for (const auto& p : ports->as_array()) {
      if (GetString(p, {"name"}) == name) return static_cast<int>(GetInt(p, {"containerPort"}).value_or(0));
    }
  }
  return std::atoi(name.c_str());
}

Probe ParseProbe(const Json& container, const char* field) {
  Probe probe;
  const Json& p = Field(container, {field});
  if (!p.is_object()) return probe;
  auto number = [&](const char* name, int fallback) {
    return static_cast<int>(GetInt(p, {name}).value_or(fallback));
  };
  probe.initialDelaySeconds = number("initialDelaySeconds", 0);
  probe.periodSeconds = std::max(1, number("periodSeconds", 10));
  probe.timeoutSeconds = std::max(1, number("timeoutSeconds", 1));
  probe.failureThreshold = std::max(1, number("failureThreshold", 3));
  probe.successThreshold = std::max(1, number("successThreshold", 1));
  if (p.has_object_field("httpGet")) {
    const Json& h = p.at("httpGet");
    probe.kind = Probe::Kind::kHttp;
    probe.host = GetString(h, {"host"});
    probe.port = ResolvePort(Field(h, {"port"}), container);
    if (!GetString(h, {"path"}).empty()) probe.path = GetString(h, {"path"});
    if (probe.path[0] != '/') probe.path = "/" + probe.path;
    if (GetString(h, {"scheme"}) == "HTTPS") probe.scheme = "https";
  } else if (p.has_object_field("tcpSocket")) {
    probe.kind = Probe::Kind::kTcp;
    probe.host = GetString(p.at("tcpSocket"), {"host"});
    probe.port = ResolvePort(Field(p.at("tcpSocket"), {"port"}), container);
  } else if (p.has_object_field("exec")) {
    probe.kind = Probe::Kind::kExec;
    probe.command = StringArray(p.at("exec"), "command");
  }
  return probe;
}

bool TcpConnects(const std::string& host, int port, milliseconds timeout) {
  auto ip = ParseIpv4(host);
  if (!ip) return false;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(*ip);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd pfd = {fd, POLLOUT, 0};
    if (poll(&pfd, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof(err);
      ok = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  close(fd);
  return ok;
}

// Consecutive results of one probe, and when it runs next.
struct ProbeState {
  Probe probe;
  SteadyClock::time_point next;
  int successes = 0;
  int failures = 0;
};

// One bind mount in the Pod's mount namespace.
struct Mount {
  std::string source;
  std::string target;
  bool readOnly = false;
};

// Everything a container start needs, made before fork.
struct Launch {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V"
  std::string path;              // the PATH of `env`, for probes
  std::string workingDir;
  std::vector<Mount> mounts;
  ContainerSecurity security;
  Probe readiness, liveness, startup;
};

// A failed step in the child, written to the parent through a pipe.
struct ChildFailure {
  // 1 unshare, 2 make / private, 3 bind mount, 4 read-only remount, 5 chdir,
  // 6 exec, 7 read-only root filesystem, then security_context.h's ChildStage.
  int stage;
  int index;  // the mount
  int error;
};

std::string ChildFailureText(const ChildFailure& failure, const Launch& launch) {
  static const char* kStages[] = {"",     "unshare(CLONE_NEWNS)", "making / private", "bind mount", "read-only remount",
                                  "chdir to workingDir", "exec", "making the root filesystem read-only"};
  std::string what = failure.stage >= 0 && failure.stage <= 7 ? kStages[failure.stage] : ChildStageName(failure.stage);
  if (failure.stage == 3 || failure.stage == 4) {
    const Mount& m = launch.mounts[static_cast<size_t>(failure.index)];
    what += " " + m.source + " -> " + m.target;
  }
  if (failure.stage == 6) what += " " + launch.argv[0];
  if (failure.stage == 7 && failure.index >= 0) what += " " + launch.mounts[static_cast<size_t>(failure.index)].target;
  if (failure.stage == kStageSetgroups || failure.stage == kStageSetgid || failure.stage == kStageSetuid) {
    what += " (uid " + std::to_string(launch.security.uid) + ", gid " + std::to_string(launch.security.gid) + ")";
  }
  return what + ": " + std::strerror(failure.error);
}

// readOnlyRootFilesystem: every mount of the Pod's namespace read-only but
// /proc and /dev (writable in a container too; /sys stays read-only, as
// there) and the volumes, parents before children. A bind mount copies the
// flags of its source's mount, so the volumes are mounted first and made
// writable again here. Returns the failed mount's index + 1, or -1 for the
// root, 0 when done. In the child: async-signal-safe.
int MakeRootReadOnly(const std::vector<Mount>& mounts) {
  mount_attr readOnly{};
  readOnly.attr_set = MOUNT_ATTR_RDONLY;
  mount_attr writable{};
  writable.attr_clr = MOUNT_ATTR_RDONLY;
  if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &readOnly, sizeof(readOnly)) != 0) return -1;
  for (const char* path : {"/proc", "/dev"}) {
    (void)mount_setattr(AT_FDCWD, path, AT_RECURSIVE, &writable, sizeof(writable));  // EINVAL: not a mount
  }
  for (size_t i = 0; i < mounts.size(); ++i) {
    mount_attr* attr = mounts[i].readOnly ? &readOnly : &writable;
    if (mount_setattr(AT_FDCWD, mounts[i].target.c_str(), AT_RECURSIVE, attr, sizeof(*attr)) != 0) {
      return static_cast<int>(i) + 1;
    }
  }
  return 0;
}

[[noreturn]] void ChildFail(int fd, int stage, int index) {
  ChildFailure failure{stage, index, errno};
  (void)!write(fd, &failure, sizeof(failure));
  _exit(127);
}

// Mount points of every mount namespace on the host but ours (the Pods of
// other kubelets: other tests running at the same time).
std::set<std::string> MountPointsOfOtherNamespaces() {
  std::set<std::string> points, seen;
  char own[128];
  ssize_t ownLen = readlink("/proc/self/ns/mnt", own, sizeof(own) - 1);
  if (ownLen > 0) seen.insert(std::string(own, static_cast<size_t>(ownLen)));
  for (const auto& entry : ListDirectory("/proc")) {
    if (entry.empty() || !std::isdigit(static_cast<unsigned char>(entry[0]))) continue;
    char link[128];
    ssize_t len = readlink(("/proc/" + entry + "/ns/mnt").c_str(), link, sizeof(link) - 1);
    if (len <= 0 || !seen.insert(std::string(link, static_cast<size_t>(len))).second) continue;
    auto mountinfo = ReadFile("/proc/" + entry + "/mountinfo");
    if (!mountinfo.ok()) continue;
    size_t start = 0;
    while (start < mountinfo->size()) {
      size_t end = mountinfo->find('\n', start);
      if (end == std::string::npos) end = mountinfo->size();
      // "ID PARENT MAJ:MIN ROOT MOUNTPOINT ...": the fifth field.
      std::string line = mountinfo->substr(start, end - start);
      size_t field = 0;
      for (int i = 0; i < 4 && field != std::string::npos; ++i) {
        field = line.find(' ', field);
        if (field != std::string::npos) ++field;
      }
      if (field != std::string::npos) points.insert(line.substr(field, line.find(' ', field) - field));
      start = end + 1;
    }
  }
  return points;
}

}  // namespace

// One Pod: prepares its volumes and environment, runs its container,
// probes it, restarts it, writes its status, and terminates it. All on its
// own thread, so a slow probe or a long grace period holds up no other Pod.
class ProcessKubelet::PodWorker {
 public:
  PodWorker(ProcessKubelet* kubelet, const Json& pod, std::string ip)
      : kubelet_(kubelet),
        ns_(kube::NamespaceOf(pod)),
        name_(kube::NameOf(pod)),
        uid_(kube::UidOf(pod)),
        ip_(std::move(ip)),
        dir_(JoinPath(kubelet->options_.root + "/pods", ns_ + "_" + name_ + "_" + uid_)),
        pod_(pod) {}

  void Start() { thread_ = std::thread([this] { Run(); }); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  void Update(const Json& pod) {
    std::lock_guard<std::mutex> lock(mu_);
    pod_ = pod;
  }
  // The Pod is being deleted (`objectRemains`: it has a deletionTimestamp and
  // we delete it once its processes are gone) or is gone.
  void Delete(const Json& pod, bool objectRemains) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!deleted_) spdlog::info("pod deleted pod={} uid={} graceful={}", PodName(ns_, name_), uid_, objectRemains);
    pod_ = pod;
    deleted_ = true;
    deleteObject_ = deleteObject_ || objectRemains;
    cv_.notify_all();
  }
  // The kubelet stops: end the processes, keep the Pod's directory.
  void Halt(bool kill) {
    std::lock_guard<std::mutex> lock(mu_);
    halted_ = true;
    killed_ = killed_ || kill;
    cv_.notify_all();
  }

  const std::string& ns() const { return ns_; }
  const std::string& name() const { return name_; }
  const std::string& uid() const { return uid_; }
  const std::string& ip() const { return ip_; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_.load(); }
  bool done() const { return done_.load(); }
  bool deleted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return deleted_;
  }
  // Claims ("ns/claim") this Pod mounts; guarded by the kubelet's mutex.
  std::set<std::string> claims;

 private:
  enum class Kind { kWaiting, kRunning, kTerminated };
  struct ContainerState {
    Kind kind = Kind::kWaiting;
    std::string reason = "ContainerCreating";
    std::string message;
    std::string startedAt, finishedAt;
    int exitCode = 0;
    int signal = 0;
  };

  void Run();
  // Binds an unbound Pod to this node (pods/binding), as the scheduler
  // would. False when the Pod is not ours to run: bound elsewhere, or gone.
  bool Bind();
  // The service-account token into `dir`: TokenRequest for the Pod's
  // service account, bound to the Pod (or --pod-token's fixed text).
  Status WriteToken(const std::string& dir, std::string* reason);
  // Renews the token in place once 80% of its life has passed.
  void RefreshTokenIfDue();
  // The Pod's deletion is done: the last status, then the grace-0 delete of
  // this very object (uid precondition).
  void FinishDeletion();
  // Builds what the next start needs; on failure fills the waiting reason.
  std::optional<Launch> Prepare(const Json& pod, std::string* reason, std::string* message);
  Status PrepareVolumes(const Json& pod, Launch* launch, std::string* reason);
  // `sharedMount`: a claim another Pod of this node mounts already.
  Result<std::string> VolumeSource(const Json& volume, std::string* reason, bool* sharedMount);
  // fsGroup ownership of a volume set up for this Pod (the kubelet's
  // SetVolumeOwnership, see security_context.h).
  void ApplyVolumeOwnership(const std::string& volume, const std::string& dir, const ContainerSecurity& security,
                            bool readOnly, bool honourPolicy);
  Result<std::string> ReadKey(const std::string& kind, const std::string& objectName, const std::string& key,
                              bool optional, bool* found);
  Result<pid_t> StartProcess(const Launch& launch);
  // Watches the running process: probes, status. Returns its wait status,
  // or nullopt when the Pod or the kubelet is ending.
  std::optional<int> Supervise(const Launch& launch, pid_t pid);
  bool RunProbe(const Probe& probe, const Launch& launch);
  // In the container's mount namespace, as its user: `docker exec`.
  bool RunExecProbe(const Probe& probe, const Launch& launch, milliseconds timeout);
  // SIGTERM to the process group, `grace`, then SIGKILL to every process of
  // the Pod. Returns the main process's wait status.
  int Terminate(pid_t pid, milliseconds grace);
  void KillPodProcesses();
  milliseconds Grace() const;

  // Waits up to `d`; true when the worker must end.
  bool WaitEnding(milliseconds d);
  bool Ending() const {
    std::lock_guard<std::mutex> lock(mu_);
    return deleted_ || halted_;
  }
  Json CurrentPod() const {
    std::lock_guard<std::mutex> lock(mu_);
    return pod_;
  }

  void SetCondition(const std::string& type, bool value);
  void WriteStatus();

  ProcessKubelet* kubelet_;
  const std::string ns_, name_, uid_, ip_, dir_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Json pod_;
  bool deleted_ = false;
  bool deleteObject_ = false;
  bool halted_ = false;
  bool killed_ = false;

  std::atomic<pid_t> pid_{-1};
  std::atomic<bool> done_{false};
  std::string mountNs_;  // /proc/PID/ns/mnt of the running container
  // Volumes whose setup (fsGroup ownership) is done for this Pod: claims and
  // emptyDirs are set up once per Pod, not at every container start.
  std::set<std::string> volumesSetUp_;
  std::thread thread_;
  std::optional<int> endedWaitStatus_;  // the container's, when deletion ended it

  // The service-account token, owned by the worker thread.
  std::string token_;
  std::string tokenDir_;
  SteadyClock::time_point tokenRefreshAt_;

  // Status, owned by the worker thread.
  std::string phase_ = "Pending";
  std::string startTime_;
  ContainerState state_;
  std::optional<ContainerState> lastState_;
  int restartCount_ = 0;
  bool ready_ = false;
  bool started_ = false;
  std::map<std::string, std::pair<bool, std::string>> conditions_;  // type -> status, lastTransitionTime
  Json written_ = Json::null();
};

void ProcessKubelet::PodWorker::Run() {
  const std::string pod = PodName(ns_, name_);
  spdlog::info("accepted pod pod={} uid={} ip={} dir={}", pod, uid_, ip_, dir_);
  if (!Bind()) {
    kubelet_->ReleaseIp(ip_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      deleted_ = true;  // not ours: the housekeeper forgets the worker
    }
    std::lock_guard<std::mutex> lock(kubelet_->mu_);
    kubelet_->wake_.notify_all();
    done_ = true;
    return;
  }
  startTime_ = Now();
  SetCondition("PodScheduled", true);
  SetCondition("Initialized", true);
  SetCondition("ContainersReady", false);
  SetCondition("Ready", false);
  (void)MakeDirs(dir_);
  WriteStatus();

  milliseconds backoff = kubelet_->options_.restartBackoff;
  bool finished = false;  // restartPolicy says no more starts
  while (!Ending()) {
    if (finished) {
      WaitEnding(milliseconds(1000));
      continue;
    }
    Json current = CurrentPod();
    std::string reason, message;
    auto launch = Prepare(current, &reason, &message);
    if (!launch) {
      if (state_.kind != Kind::kWaiting || state_.reason != reason || state_.message != message) {
        spdlog::warn("cannot start container pod={} reason={} message=\"{}\"", pod, reason, message);
      }
      state_ = ContainerState{};
      state_.reason = reason;
      state_.message = message;
      WriteStatus();
      WaitEnding(milliseconds(1000));
      continue;
    }
    auto pid = StartProcess(*launch);
    std::string startedAt = Now();
    auto startedAtSteady = SteadyClock::now();
    int waitStatus = 0;
    if (!pid.ok()) {
      spdlog::warn("container failed to start pod={} error=\"{}\"", pod, pid.status().message());
      ContainerState failed;
      failed.kind = Kind::kTerminated;
      failed.reason = "StartError";
      failed.message = pid.status().message();
      failed.exitCode = 128;
      failed.startedAt = failed.finishedAt = startedAt;
      lastState_ = failed;
    } else {
      spdlog::info("started container pod={} pid={} command=\"{}\"", pod, *pid, launch->argv[0]);
      pid_ = *pid;
      state_ = ContainerState{};
      state_.kind = Kind::kRunning;
      state_.startedAt = startedAt;
      state_.reason.clear();
      phase_ = "Running";
      auto ended = Supervise(*launch, *pid);
      pid_ = -1;
      if (!ended) break;  // deleted or halted: Supervise terminated it
      waitStatus = *ended;
      ContainerState exited;
      exited.kind = Kind::kTerminated;
      exited.startedAt = startedAt;
      exited.finishedAt = Now();
      exited.exitCode = WIFEXITED(waitStatus) ? WEXITSTATUS(waitStatus) : 128 + WTERMSIG(waitStatus);
      exited.signal = WIFSIGNALED(waitStatus) ? WTERMSIG(waitStatus) : 0;
      exited.reason = exited.exitCode == 0 ? "Completed" : "Error";
      lastState_ = exited;
      spdlog::info("container exited pod={} pid={} status=\"{}\"", pod, *pid, DescribeWaitStatus(waitStatus));
    }
    ready_ = false;
    started_ = false;
    SetCondition("ContainersReady", false);
    SetCondition("Ready", false);
    int exitCode = lastState_->exitCode;
    std::string policy = GetString(current, {"spec", "restartPolicy"});
    if (policy == "Never" || (policy == "OnFailure" && exitCode == 0)) {
      state_ = *lastState_;
      lastState_.reset();
      phase_ = exitCode == 0 ? "Succeeded" : "Failed";
      spdlog::info("pod finished pod={} phase={} restartPolicy={}", pod, phase_, policy);
      finished = true;
      WriteStatus();
      continue;
    }
    if (SteadyClock::now() - startedAtSteady >= 2 * kubelet_->options_.maxRestartBackoff) {
      backoff = kubelet_->options_.restartBackoff;
    }
    state_ = ContainerState{};
    state_.reason = "CrashLoopBackOff";
    state_.message = "back-off " + std::to_string(backoff.count()) + "ms restarting failed container";
    WriteStatus();
    if (WaitEnding(backoff)) break;
    backoff = std::min(backoff * 2, kubelet_->options_.maxRestartBackoff);
    ++restartCount_;
    spdlog::info("restarting container pod={} restartCount={}", pod, restartCount_);
  }

  bool deleteObject;
  bool deleted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    deleteObject = deleteObject_;
    deleted = deleted_;
  }
  if (deleted) {
    if (deleteObject) FinishDeletion();
    (void)RemoveTree(dir_);
    kubelet_->ReleaseIp(ip_);
    spdlog::info("removed pod pod={} uid={} ip={}", pod, uid_, ip_);
  }
  {
    std::lock_guard<std::mutex> lock(kubelet_->mu_);
    claims.clear();
    kubelet_->wake_.notify_all();
  }
  done_ = true;
}

bool ProcessKubelet::PodWorker::Bind() {
  const std::string pod = PodName(ns_, name_);
  const std::string& node = kubelet_->options_.nodeName;
  milliseconds backoff(100);
  while (!Ending()) {
    std::string bound = GetString(CurrentPod(), {"spec", "nodeName"});
    if (bound == node) return true;
    if (!bound.empty()) {
      spdlog::info("pod bound to another node pod={} uid={} node={}", pod, uid_, bound);
      return false;
    }
    Json binding = Json::object();
    binding["apiVersion"] = Json::string("v1");
    binding["kind"] = Json::string("Binding");
    binding["metadata"]["name"] = Json::string(name_);
    binding["metadata"]["namespace"] = Json::string(ns_);
    binding["metadata"]["uid"] = Json::string(uid_);  // never a namesake
    binding["target"]["apiVersion"] = Json::string("v1");
    binding["target"]["kind"] = Json::string("Node");
    binding["target"]["name"] = Json::string(node);
    auto result = kubelet_->client_->CreateSubresource(PodResource(), ns_, name_, "binding", binding);
    if (result.ok()) {
      spdlog::info("bound pod pod={} uid={} node={}", pod, uid_, node);
      Json current = CurrentPod();
      current["spec"]["nodeName"] = Json::string(node);  // until the informer's copy says so
      Update(current);
      return true;
    }
    if (result.status().code() == StatusCode::kNotFound) return false;
    if (result.status().code() == StatusCode::kConflict) {
      // Bound meanwhile (by whom?), or a namesake: look again.
      auto fresh = kubelet_->client_->Get(PodResource(), ns_, name_);
      if (!fresh.ok() && fresh.status().code() == StatusCode::kNotFound) return false;
      if (fresh.ok()) {
        if (kube::UidOf(*fresh) != uid_) return false;
        Update(*fresh);
        continue;
      }
    }
    spdlog::warn("could not bind pod pod={} node={} error=\"{}\"", pod, node, result.status().message());
    if (WaitEnding(backoff)) break;
    backoff = std::min(backoff * 2, milliseconds(2000));
  }
  return true;  // ending anyway: the usual teardown
}

Status ProcessKubelet::PodWorker::WriteToken(const std::string& dir, std::string* reason) {
  tokenDir_ = dir;
  if (kubelet_->fixedPodToken_) return WriteFileAtomic(dir + "/token", kubelet_->podToken_, 0644);
  if (token_.empty() || SteadyClock::now() >= tokenRefreshAt_) {
    Json pod = CurrentPod();
    std::string account = GetString(pod, {"spec", "serviceAccountName"});
    if (account.empty()) account = "default";
    Json request = Json::object();
    request["apiVersion"] = Json::string("authentication.k8s.io/v1");
    request["kind"] = Json::string("TokenRequest");
    request["spec"]["expirationSeconds"] = Json::number(static_cast<int64_t>(kubelet_->options_.tokenExpiration.count()));
    request["spec"]["boundObjectRef"]["kind"] = Json::string("Pod");
    request["spec"]["boundObjectRef"]["apiVersion"] = Json::string("v1");
    request["spec"]["boundObjectRef"]["name"] = Json::string(name_);
    request["spec"]["boundObjectRef"]["uid"] = Json::string(uid_);
    auto issued = kubelet_->client_->CreateSubresource(ServiceAccountResource(), ns_, account, "token", request);
    std::string token = issued.ok() ? GetString(*issued, {"status", "token"}) : "";
    if (token.empty()) {
      // A real kubelet's kube-api-access volume cannot be set up: the Pod
      // does not start.
      *reason = "ContainerCreating";
      std::string why = issued.ok() ? "the TokenRequest answer has no status.token" : issued.status().message();
      return Status(issued.ok() ? StatusCode::kInternal : issued.status().code(),
                    "MountVolume.SetUp failed for volume \"kube-api-access\": failed to fetch token: " + why);
    }
    int64_t lifetime = GetInt(*issued, {"spec", "expirationSeconds"})
                           .value_or(static_cast<int64_t>(kubelet_->options_.tokenExpiration.count()));
    token_ = token;
    tokenRefreshAt_ = SteadyClock::now() + milliseconds(lifetime * 800);  // 80% of its life
    spdlog::info("issued service account token pod={} serviceAccount={} expirationSeconds={} expires={}",
                 PodName(ns_, name_), account, lifetime, GetString(*issued, {"status", "expirationTimestamp"}));
  }
  return WriteFileAtomic(dir + "/token", token_, 0644);
}

void ProcessKubelet::PodWorker::RefreshTokenIfDue() {
  if (kubelet_->fixedPodToken_ || token_.empty() || tokenDir_.empty() || SteadyClock::now() < tokenRefreshAt_) return;
  std::string reason;
  // A new file renamed over the old one inside the bind-mounted directory:
  // the running container sees the new token at once.
  Status s = WriteToken(tokenDir_, &reason);
  if (!s.ok()) {
    spdlog::warn("could not refresh service account token pod={} error=\"{}\"", PodName(ns_, name_), s.message());
    tokenRefreshAt_ = SteadyClock::now() + milliseconds(1000);
    return;
  }
  spdlog::info("refreshed service account token pod={} file={}/token", PodName(ns_, name_), tokenDir_);
}

void ProcessKubelet::PodWorker::FinishDeletion() {
  const std::string pod = PodName(ns_, name_);
  if (endedWaitStatus_) {
    int waitStatus = *endedWaitStatus_;
    ContainerState ended;
    ended.kind = Kind::kTerminated;
    ended.startedAt = state_.startedAt;
    ended.finishedAt = Now();
    ended.exitCode = WIFEXITED(waitStatus) ? WEXITSTATUS(waitStatus) : 128 + WTERMSIG(waitStatus);
    ended.signal = WIFSIGNALED(waitStatus) ? WTERMSIG(waitStatus) : 0;
    ended.reason = ended.exitCode == 0 ? "Completed" : "Error";
    state_ = ended;
  }
  // A deleted Pod ends in a terminal phase before it goes (kubelet >= 1.27).
  if (phase_ != "Succeeded" && phase_ != "Failed") {
    phase_ = state_.kind == Kind::kTerminated && state_.exitCode == 0 ? "Succeeded" : "Failed";
  }
  ready_ = false;
  started_ = false;
  SetCondition("ContainersReady", false);
  SetCondition("Ready", false);
  WriteStatus();
  kube::DeleteOptions atOnce;
  atOnce.gracePeriodSeconds = 0;  // its processes are gone: nothing left to wait for
  atOnce.preconditionUid = uid_;
  Status s = kubelet_->client_->Delete(PodResource(), ns_, name_, atOnce);
  if (!s.ok() && s.code() != StatusCode::kNotFound && s.code() != StatusCode::kConflict) {
    spdlog::warn("could not delete pod pod={} error=\"{}\"", pod, s.message());
  } else {
    spdlog::info("deleted pod object pod={} uid={} phase={}", pod, uid_, phase_);
  }
}

bool ProcessKubelet::PodWorker::WaitEnding(milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, d, [&] { return deleted_ || halted_; });
}

milliseconds ProcessKubelet::PodWorker::Grace() const {
  Json pod = CurrentPod();
  auto seconds = GetInt(pod, {"metadata", "deletionGracePeriodSeconds"});
  if (!seconds) seconds = GetInt(pod, {"spec", "terminationGracePeriodSeconds"});
  return std::min(milliseconds(seconds.value_or(30) * 1000), kubelet_->options_.maxGrace);
}

std::optional<Launch> ProcessKubelet::PodWorker::Prepare(const Json& pod, std::string* reason,
                                                         std::string* message) {
  const Json* containers = kube::GetField(pod, {"spec", "containers"});
  if (containers == nullptr || !containers->is_array() || containers->as_array().size() == 0) {
    *reason = "CreateContainerConfigError";
    *message = "spec.containers: no container";
    return std::nullopt;
  }
  const Json& container = containers->as_array().at(0);
  const KubeletOptions& options = kubelet_->options_;
  Launch launch;
  IdMaps maps{options.uidMap, options.gidMap, options.imageUser};
  auto security = ResolveContainerSecurity(pod, container, maps, reason);
  if (!security.ok()) {
    *message = security.status().message();
    return std::nullopt;
  }
  launch.security = *security;

  // Environment: what an image would give (PATH, HOME, HOSTNAME), the API
  // server's Service variables, then the container's own, in order.
  std::vector<std::string> order;
  std::map<std::string, std::string> env;
  auto set = [&](const std::string& k, const std::string& v) {
    if (!env.count(k)) order.push_back(k);
    env[k] = v;
  };
  const char* hostPath = getenv("PATH");
  set("PATH", hostPath != nullptr ? hostPath : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  set("HOME", launch.security.home);
  std::string hostname = GetString(pod, {"spec", "hostname"});
  set("HOSTNAME", hostname.empty() ? name_ : hostname);
  std::string apiHost, apiPort;
  ServiceHostPort(kubelet_->client_->config().server, &apiHost, &apiPort);
  set("KUBERNETES_SERVICE_HOST", apiHost);
  set("KUBERNETES_SERVICE_PORT", apiPort);
  set("KUBERNETES_SERVICE_PORT_HTTPS", apiPort);

  auto fail = [&](const std::string& why, const std::string& what) {
    *reason = why;
    *message = what;
    return std::nullopt;
  };
  if (const Json* from = kube::GetField(container, {"envFrom"}); from != nullptr && from->is_array()) {
    for (const auto& source : from->as_array()) {
      bool secret = source.has_object_field("secretRef");
      const Json& ref = Field(source, {secret ? "secretRef" : "configMapRef"});
      std::string objectName = GetString(ref, {"name"});
      auto object = kubelet_->client_->Get(secret ? SecretResource() : kube::ConfigMapResource(), ns_, objectName);
      if (!object.ok()) {
        if (GetBool(ref, {"optional"}, false) && object.status().code() == StatusCode::kNotFound) continue;
        return fail("CreateContainerConfigError", object.status().message());
      }
      for (const auto& key : KeysOfData(*object)) {
        set(GetString(source, {"prefix"}) + key, KeyOfData(*object, key, secret).value_or(""));
      }
    }
  }
  if (const Json* list = kube::GetField(container, {"env"}); list != nullptr && list->is_array()) {
    for (const auto& var : list->as_array()) {
      std::string key = GetString(var, {"name"});
      if (!var.has_object_field("valueFrom")) {
        set(key, Expand(GetString(var, {"value"}), env));
        continue;
      }
      const Json& from = var.at("valueFrom");
      if (from.has_object_field("fieldRef")) {
        std::string path = GetString(from.at("fieldRef"), {"fieldPath"});
        std::string value;
        if (path == "metadata.name") value = name_;
        else if (path == "metadata.namespace") value = ns_;
        else if (path == "metadata.uid") value = uid_;
        else if (path == "status.podIP") value = ip_;
        else if (path == "status.hostIP") value = "127.0.0.1";
        else if (path == "spec.nodeName") value = options.nodeName;
        else if (path == "spec.serviceAccountName") {
          value = GetString(pod, {"spec", "serviceAccountName"});
          if (value.empty()) value = "default";
        } else if (path.rfind("metadata.labels['", 0) == 0 || path.rfind("metadata.annotations['", 0) == 0) {
          bool labels = path[9] == 'l';
          std::string k = path.substr(labels ? 17 : 22);
          k = k.substr(0, k.find('\''));
          value = GetString(Field(pod, {"metadata", labels ? "labels" : "annotations"}), {k.c_str()});
        } else {
          return fail("CreateContainerConfigError", "env " + key + ": unsupported fieldPath " + path);
        }
        set(key, value);
      } else if (from.has_object_field("secretKeyRef") || from.has_object_field("configMapKeyRef")) {
        bool secret = from.has_object_field("secretKeyRef");
        const Json& ref = from.at(secret ? "secretKeyRef" : "configMapKeyRef");
        bool found = false;
        auto value = ReadKey(secret ? "secret" : "configmap", GetString(ref, {"name"}), GetString(ref, {"key"}),
                             GetBool(ref, {"optional"}, false), &found);
        if (!value.ok()) return fail("CreateContainerConfigError", value.status().message());
        if (found) set(key, *value);
      } else {
        return fail("CreateContainerConfigError", "env " + key + ": unsupported valueFrom");
      }
    }
  }
  for (const auto& k : order) launch.env.push_back(k + "=" + env[k]);
  launch.path = env["PATH"];

  std::vector<std::string> command = StringArray(container, "command");
  std::vector<std::string> args = StringArray(container, "args");
  if (command.empty()) {
    return fail("CreateContainerError",
                "container " + GetString(container, {"name"}) + " has no command: the process kubelet runs no images");
  }
  command.insert(command.end(), args.begin(), args.end());
  for (auto& a : command) a = Expand(a, env);
  if (auto mapped = options.commandMap.find(command[0]); mapped != options.commandMap.end()) {
    command[0] = mapped->second;
  }
  command[0] = ResolveProgram(command[0], launch.path);
  if (access(command[0].c_str(), X_OK) != 0) {
    return fail("RunContainerError", command[0] + ": not executable: " + std::strerror(errno) +
                                         " (map it with --map-command FROM=TO)");
  }
  launch.argv = command;
  launch.workingDir = GetString(container, {"workingDir"});

  if (Status s = PrepareVolumes(pod, &launch, reason); !s.ok()) {
    *message = s.message();
    return std::nullopt;
  }

  launch.readiness = ParseProbe(container, "readinessProbe");
  launch.liveness = ParseProbe(container, "livenessProbe");
  launch.startup = ParseProbe(container, "startupProbe");
  for (Probe* probe : {&launch.readiness, &launch.liveness, &launch.startup}) {
    if (probe->kind == Probe::Kind::kExec && !probe->command.empty()) {
      if (auto mapped = options.commandMap.find(probe->command[0]); mapped != options.commandMap.end()) {
        probe->command[0] = mapped->second;
      }
      probe->command[0] = ResolveProgram(probe->command[0], launch.path);
    }
  }
  return launch;
}

Result<std::string> ProcessKubelet::PodWorker::ReadKey(const std::string& kind, const std::string& objectName,
                                                       const std::string& key, bool optional, bool* found) {
  bool secret = kind == "secret";
  auto object = kubelet_->client_->Get(secret ? SecretResource() : kube::ConfigMapResource(), ns_, objectName);
  *found = false;
  if (!object.ok()) {
    if (optional && object.status().code() == StatusCode::kNotFound) return std::string();
    if (object.status().code() == StatusCode::kNotFound) return Status::NotFound(kind + " \"" + objectName + "\" not found");
    return object.status();
  }
  auto value = KeyOfData(*object, key, secret);
  if (!value) {
    if (optional) return std::string();
    return Status::NotFound("couldn't find key " + key + " in " + kind + " " + ns_ + "/" + objectName);
  }
  *found = true;
  return *value;
}

// The host directory behind a volume, filled when the kubelet owns it.
Result<std::string> ProcessKubelet::PodWorker::VolumeSource(const Json& volume, std::string* reason,
                                                            bool* sharedMount) {
  std::string name = GetString(volume, {"name"});
  *reason = "ContainerCreating";
  *sharedMount = false;
  if (volume.has_object_field("persistentVolumeClaim")) {
    std::string claim = GetString(volume.at("persistentVolumeClaim"), {"claimName"});
    return kubelet_->AcquireClaim(this, ns_, claim, sharedMount);
  }
  if (volume.has_object_field("emptyDir")) {
    std::string dir = dir_ + "/volumes/" + name;
    if (!PathExists(dir)) {
      PGRS_RETURN_IF_ERROR(MakeDirs(dir, 0777));
      chmod(dir.c_str(), 0777);  // as a real emptyDir: any user of the Pod writes there
    }
    return dir;
  }
  if (volume.has_object_field("hostPath")) return GetString(volume.at("hostPath"), {"path"});
  bool secret = volume.has_object_field("secret");
  if (secret || volume.has_object_field("configMap")) {
    const Json& source = volume.at(secret ? "secret" : "configMap");
    std::string objectName = GetString(source, {secret ? "secretName" : "name"});
    auto object = kubelet_->client_->Get(secret ? SecretResource() : kube::ConfigMapResource(), ns_, objectName);
    std::string dir = dir_ + "/volumes/" + name;
    if (!object.ok()) {
      if (object.status().code() == StatusCode::kNotFound && GetBool(source, {"optional"}, false)) {
        PGRS_RETURN_IF_ERROR(MakeDirs(dir));
        return dir;
      }
      return Status::Unavailable("volume " + name + ": " + (secret ? "secret" : "configmap") + " \"" + objectName +
                                 "\": " + object.status().message());
    }
    mode_t defaultMode = static_cast<mode_t>(GetInt(source, {"defaultMode"}).value_or(0644));
    std::vector<std::pair<std::string, std::pair<std::string, mode_t>>> files;  // key -> path, mode
    const Json& items = Field(source, {"items"});
    if (items.is_array() && items.as_array().size() > 0) {
      for (const auto& item : items.as_array()) {
        files.push_back({GetString(item, {"key"}),
                         {GetString(item, {"path"}),
                          static_cast<mode_t>(GetInt(item, {"mode"}).value_or(defaultMode))}});
      }
    } else {
      for (const auto& key : KeysOfData(*object)) files.push_back({key, {key, defaultMode}});
    }
    (void)RemoveTree(dir);  // the current content only, as a real kubelet's atomic writer
    PGRS_RETURN_IF_ERROR(MakeDirs(dir));
    for (const auto& [key, target] : files) {
      auto value = KeyOfData(*object, key, secret);
      if (!value) return Status::NotFound("volume " + name + ": no key " + key + " in " + objectName);
      std::string path = JoinPath(dir, target.first);
      PGRS_RETURN_IF_ERROR(MakeDirs(path.substr(0, path.rfind('/'))));
      PGRS_RETURN_IF_ERROR(WriteFileAtomic(path, *value, target.second));
      chmod(path.c_str(), target.second);  // the umask must not narrow defaultMode
    }
    return dir;
  }
  *reason = "CreateContainerConfigError";
  return Status::Invalid("volume " + name + ": unsupported volume type");
}

Status ProcessKubelet::PodWorker::PrepareVolumes(const Json& pod, Launch* launch, std::string* reason) {
  std::map<std::string, std::string> sources;  // volume name -> host path
  if (const Json* volumes = kube::GetField(pod, {"spec", "volumes"}); volumes != nullptr && volumes->is_array()) {
    for (const auto& volume : volumes->as_array()) {
      bool sharedMount = false;
      auto source = VolumeSource(volume, reason, &sharedMount);
      if (!source.ok()) return source.status();
      std::string name = GetString(volume, {"name"});
      sources[name] = *source;
      // As the real volume plugins call SetVolumeOwnership: secret and
      // configMap (read-only, always: they were just written afresh),
      // emptyDir (at its setup, always), a claim as a local PersistentVolume
      // (at the first mount on the node, not read-only ones, with
      // fsGroupChangePolicy); hostPath never.
      if (volume.has_object_field("secret") || volume.has_object_field("configMap")) {
        ApplyVolumeOwnership(name, *source, launch->security, true, false);
      } else if (volume.has_object_field("emptyDir") && volumesSetUp_.insert(name).second) {
        ApplyVolumeOwnership(name, *source, launch->security, false, false);
      } else if (volume.has_object_field("persistentVolumeClaim") && volumesSetUp_.insert(name).second &&
                 !GetBool(volume.at("persistentVolumeClaim"), {"readOnly"}, false)) {
        if (!sharedMount) {
          ApplyVolumeOwnership(name, *source, launch->security, false, true);
        } else if (launch->security.fsGroup) {
          spdlog::info("skipped volume ownership pod={} volume={} fsGroup={} dir={} reason=\"mounted by another pod "
                       "of this node\"",
                       PodName(ns_, name_), name, *launch->security.fsGroup, *source);
        }
      }
    }
  }
  const Json& container = Field(pod, {"spec", "containers"}).as_array().at(0);
  bool tokenMounted = false;
  if (const Json* mounts = kube::GetField(container, {"volumeMounts"}); mounts != nullptr && mounts->is_array()) {
    for (const auto& m : mounts->as_array()) {
      std::string name = GetString(m, {"name"});
      auto source = sources.find(name);
      if (source == sources.end()) {
        *reason = "CreateContainerConfigError";
        return Status::Invalid("volumeMounts " + name + ": no such volume");
      }
      Mount mount{source->second, GetString(m, {"mountPath"}), GetBool(m, {"readOnly"}, false)};
      if (std::string sub = GetString(m, {"subPath"}); !sub.empty()) {
        mount.source = JoinPath(mount.source, sub);
        if (!PathExists(mount.source)) PGRS_RETURN_IF_ERROR(MakeDirs(mount.source));
      }
      tokenMounted = tokenMounted || mount.target == kube::kServiceAccountDir;
      launch->mounts.push_back(mount);
    }
  }
  if (GetBool(pod, {"spec", "automountServiceAccountToken"}, true) && !tokenMounted) {
    std::string dir = dir_ + "/serviceaccount";
    PGRS_RETURN_IF_ERROR(MakeDirs(dir));
    PGRS_RETURN_IF_ERROR(WriteToken(dir, reason));
    PGRS_RETURN_IF_ERROR(WriteFileAtomic(dir + "/ca.crt", kubelet_->client_->config().caData, 0644));
    PGRS_RETURN_IF_ERROR(WriteFileAtomic(dir + "/namespace", ns_, 0644));
    launch->mounts.push_back({dir, kube::kServiceAccountDir, true});
  }
  // The service account token the kubelet wrote (a projected volume:
  // read-only, always).
  for (const auto& mount : launch->mounts) {
    if (mount.target == kube::kServiceAccountDir && mount.source.rfind(dir_ + "/", 0) == 0) {
      ApplyVolumeOwnership("kube-api-access", mount.source, launch->security, true, false);
    }
  }
  // Parents before children.
  std::stable_sort(launch->mounts.begin(), launch->mounts.end(),
                   [](const Mount& a, const Mount& b) { return a.target < b.target; });
  for (const auto& mount : launch->mounts) {
    if (mount.target.empty() || mount.target[0] != '/') {
      *reason = "CreateContainerConfigError";
      return Status::Invalid("mountPath \"" + mount.target + "\": must be an absolute path");
    }
    PGRS_RETURN_IF_ERROR(kubelet_->EnsureMountPoint(mount.target, !IsDirectory(mount.source)));
  }
  return Status::Ok();
}

void ProcessKubelet::PodWorker::ApplyVolumeOwnership(const std::string& volume, const std::string& dir,
                                                     const ContainerSecurity& security, bool readOnly,
                                                     bool honourPolicy) {
  if (!security.fsGroup) return;
  bool onRootMismatch = honourPolicy && security.fsGroupOnRootMismatch;
  const char* policy = onRootMismatch ? "OnRootMismatch" : "Always";
  auto applied = SetVolumeOwnership(dir, *security.fsGroup, readOnly, onRootMismatch);
  if (!applied.ok()) {
    spdlog::warn("could not set volume ownership pod={} volume={} fsGroup={} error=\"{}\"", PodName(ns_, name_),
                 volume, *security.fsGroup, applied.status().message());
  } else if (*applied) {
    spdlog::info("set volume ownership pod={} volume={} fsGroup={} policy={} dir={}", PodName(ns_, name_), volume,
                 *security.fsGroup, policy, dir);
  } else {
    spdlog::info("skipped volume ownership pod={} volume={} fsGroup={} policy={} dir={} reason=\"root already "
                 "has the group, rwx and setgid\"",
                 PodName(ns_, name_), volume, *security.fsGroup, policy, dir);
  }
}

Result<pid_t> ProcessKubelet::PodWorker::StartProcess(const Launch& launch) {
  // Everything the child touches is made here: after fork only
  // async-signal-safe calls (we have threads).
  std::vector<char*> argv, envp;
  for (const auto& a : launch.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : launch.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::string logPath = dir_ + "/container.log";
  int logFd = open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) return Status::Unavailable(logPath + ": " + std::strerror(errno));
  int nullFd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    close(logFd);
    if (nullFd >= 0) close(nullFd);
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  const char* workingDir = launch.workingDir.empty() ? nullptr : launch.workingDir.c_str();
  PreparedSecurity security = PrepareContainerSecurity(launch.security);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(logFd);
    if (nullFd >= 0) close(nullFd);
    close(report[0]);
    close(report[1]);
    return Status::Unavailable(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    ChildStartsClean(parent);
    dup2(logFd, STDOUT_FILENO);
    dup2(logFd, STDERR_FILENO);
    if (nullFd >= 0) dup2(nullFd, STDIN_FILENO);
    int fd = report[1];
    if (unshare(CLONE_NEWNS) != 0) ChildFail(fd, 1, 0);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ChildFail(fd, 2, 0);
    for (size_t i = 0; i < launch.mounts.size(); ++i) {
      const char* target = launch.mounts[i].target.c_str();
      if (mount(launch.mounts[i].source.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        ChildFail(fd, 3, static_cast<int>(i));
      }
      if (launch.mounts[i].readOnly &&
          mount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
        ChildFail(fd, 4, static_cast<int>(i));
      }
    }
    if (launch.security.readOnlyRootFilesystem) {
      if (int failed = MakeRootReadOnly(launch.mounts); failed != 0) ChildFail(fd, 7, failed < 0 ? -1 : failed - 1);
    }
    // As a runtime does: the mounts as root, then the container's user.
    if (int stage = ApplyContainerSecurity(security, SIGKILL, parent); stage != 0) ChildFail(fd, stage, 0);
    if (workingDir != nullptr && chdir(workingDir) != 0) ChildFail(fd, 5, 0);
    execve(argv[0], argv.data(), envp.data());
    ChildFail(fd, 6, 0);
  }
  setpgid(pid, pid);  // both sides, so no race
  close(logFd);
  if (nullFd >= 0) close(nullFd);
  close(report[1]);
  ChildFailure failure{};
  ssize_t n;
  do {
    n = read(report[0], &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    int status;
    waitpid(pid, &status, 0);
    return Status::Unavailable(ChildFailureText(failure, launch));
  }
  // The child has exec'd: its mount namespace is the Pod's from now on.
  char link[128];
  std::string nsPath = "/proc/" + std::to_string(pid) + "/ns/mnt";
  ssize_t len = readlink(nsPath.c_str(), link, sizeof(link) - 1);
  mountNs_ = len > 0 ? std::string(link, static_cast<size_t>(len)) : "";
  // Never the kubelet's own namespace: KillPodProcesses would kill the host.
  char own[128];
  ssize_t ownLen = readlink("/proc/self/ns/mnt", own, sizeof(own) - 1);
  if (ownLen <= 0 || mountNs_ == std::string(own, static_cast<size_t>(ownLen))) mountNs_.clear();
  return pid;
}

// Every process of the Pod shares its mount namespace (the cgroup of a
// real container): also those that left the process group.
void ProcessKubelet::PodWorker::KillPodProcesses() {
  if (mountNs_.empty()) return;
  for (const auto& entry : ListDirectory("/proc")) {
    if (entry.empty() || !std::isdigit(static_cast<unsigned char>(entry[0]))) continue;
    char link[128];
    std::string nsPath = "/proc/" + entry + "/ns/mnt";
    ssize_t len = readlink(nsPath.c_str(), link, sizeof(link) - 1);
    if (len > 0 && std::string(link, static_cast<size_t>(len)) == mountNs_) {
      kill(static_cast<pid_t>(std::atoi(entry.c_str())), SIGKILL);
    }
  }
}

int ProcessKubelet::PodWorker::Terminate(pid_t pid, milliseconds grace) {
  const std::string pod = PodName(ns_, name_);
  int status = 0;
  bool exited = false;
  if (grace.count() > 0) {
    spdlog::info("stopping container pod={} pid={} signal=SIGTERM grace={}ms", pod, pid, grace.count());
    kill(pid, SIGTERM);  // a runtime signals the container's PID 1, not a process group
    auto started = SteadyClock::now();
    auto deadline = started + grace;
    while (SteadyClock::now() < deadline) {
      if (deleted()) deadline = std::min(deadline, started + Grace());  // a later DELETE may shorten it
      if (auto reaped = TryReap(pid)) {
        status = *reaped;
        exited = true;
        break;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  if (!exited) spdlog::info("killing container pod={} pid={} signal=SIGKILL", pod, pid);
  kill(-pid, SIGKILL);
  KillPodProcesses();
  if (!exited) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  spdlog::info("container ended pod={} pid={} status=\"{}\"", pod, pid, DescribeWaitStatus(status));
  return status;
}

std::optional<int> ProcessKubelet::PodWorker::Supervise(const Launch& launch, pid_t pid) {
  const std::string pod = PodName(ns_, name_);
  auto start = SteadyClock::now();
  auto initial = [&](const Probe& p) { return start + std::chrono::seconds(p.initialDelaySeconds); };
  ProbeState readiness{launch.readiness, initial(launch.readiness)};
  ProbeState liveness{launch.liveness, initial(launch.liveness)};
  ProbeState startup{launch.startup, initial(launch.startup)};
  started_ = startup.probe.kind == Probe::Kind::kNone;
  ready_ = started_ && readiness.probe.kind == Probe::Kind::kNone;
  SetCondition("ContainersReady", ready_);
  SetCondition("Ready", ready_);
  WriteStatus();

  // Runs `state`'s probe when due; returns +1 on a threshold crossed to
  // success, -1 to failure, 0 otherwise.
  auto step = [&](ProbeState& state, const char* kind, bool current) -> int {
    if (state.probe.kind == Probe::Kind::kNone || SteadyClock::now() < state.next) return 0;
    bool ok = RunProbe(state.probe, launch);
    state.next = SteadyClock::now() + std::chrono::seconds(state.probe.periodSeconds);
    if (ok) {
      state.failures = 0;
      if (++state.successes >= state.probe.successThreshold && !current) {
        spdlog::info("probe succeeded pod={} probe={}", pod, kind);
        return 1;
      }
    } else {
      state.successes = 0;
      if (++state.failures >= state.probe.failureThreshold && current) {
        spdlog::info("probe failed pod={} probe={} failures={}", pod, kind, state.failures);
        return -1;
      }
    }
    return 0;
  };

  while (true) {
    if (WaitEnding(kubelet_->options_.tick)) {
      bool kill;
      {
        std::lock_guard<std::mutex> lock(mu_);
        kill = killed_;
      }
      bool halted;
      {
        std::lock_guard<std::mutex> lock(mu_);
        halted = halted_ && !deleted_;
      }
      endedWaitStatus_ = Terminate(pid, kill ? milliseconds(0) : halted ? kubelet_->options_.stopGrace : Grace());
      return std::nullopt;
    }
    RefreshTokenIfDue();
    if (auto status = TryReap(pid)) {
      kill(-pid, SIGKILL);  // what the container left behind goes with it
      KillPodProcesses();
      return *status;
    }
    if (!started_) {
      if (step(startup, "startup", false) > 0) started_ = true;
      else if (startup.failures >= startup.probe.failureThreshold) {
        spdlog::info("restarting container after failed startup probe pod={}", pod);
        return Terminate(pid, Grace());
      }
    } else {
      // Liveness counts failures from "alive".
      if (step(liveness, "liveness", true) < 0) {
        spdlog::info("restarting container after failed liveness probe pod={}", pod);
        return Terminate(pid, Grace());
      }
      int readinessChange = step(readiness, "readiness", ready_);
      if (readinessChange != 0) ready_ = readinessChange > 0;
      if (readiness.probe.kind == Probe::Kind::kNone) ready_ = true;
    }
    SetCondition("ContainersReady", ready_);
    SetCondition("Ready", ready_);
    WriteStatus();
  }
}

bool ProcessKubelet::PodWorker::RunProbe(const Probe& probe, const Launch& launch) {
  milliseconds timeout(probe.timeoutSeconds * 1000);
  std::string host = probe.host.empty() ? ip_ : probe.host;
  switch (probe.kind) {
    case Probe::Kind::kHttp: {
      // Over HTTPS as a real kubelet: no client certificate, the server not verified.
      const std::string url = probe.scheme + "://" + host + ":" + std::to_string(probe.port) + probe.path;
      TlsFiles probeTls;
      probeTls.insecureSkipVerify = true;
      auto response = probe.scheme == "https" ? HttpCall("GET", url, "", "", timeout, probeTls)
                                              : HttpCall("GET", url, "", "", timeout);
      return response.ok() && response->status >= 200 && response->status < 400;
    }
    case Probe::Kind::kTcp:
      return TcpConnects(host, probe.port, timeout);
    case Probe::Kind::kExec:
      return RunExecProbe(probe, launch, timeout);
    case Probe::Kind::kNone:
      return true;
  }
  return true;
}

bool ProcessKubelet::PodWorker::RunExecProbe(const Probe& probe, const Launch& launch, milliseconds timeout) {
  pid_t container = pid_.load();
  if (probe.command.empty() || container <= 0) return false;
  std::string nsPath = "/proc/" + std::to_string(container) + "/ns/mnt";
  int nsFd = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsFd < 0) return false;
  int nullFd = open("/dev/null", O_RDWR | O_CLOEXEC);
  std::vector<char*> argv, envp;
  for (const auto& a : probe.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : launch.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const char* workingDir = launch.workingDir.empty() ? "/" : launch.workingDir.c_str();
  PreparedSecurity security = PrepareContainerSecurity(launch.security);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    ChildStartsClean(parent);
    if (nullFd >= 0) {
      dup2(nullFd, STDIN_FILENO);
      dup2(nullFd, STDOUT_FILENO);
      dup2(nullFd, STDERR_FILENO);
    }
    if (setns(nsFd, CLONE_NEWNS) != 0) _exit(126);
    if (ApplyContainerSecurity(security, SIGKILL, parent) != 0) _exit(126);
    if (chdir(workingDir) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(nsFd);
  if (nullFd >= 0) close(nullFd);
  if (pid < 0) return false;
  setpgid(pid, pid);
  auto deadline = SteadyClock::now() + timeout;
  std::optional<int> status;
  while (!(status = TryReap(pid)) && SteadyClock::now() < deadline) std::this_thread::sleep_for(milliseconds(10));
  if (!status) {
    kill(-pid, SIGKILL);
    int raw = 0;
    while (waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
    }
    return false;
  }
  return WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

void ProcessKubelet::PodWorker::SetCondition(const std::string& type, bool value) {
  auto it = conditions_.find(type);
  if (it != conditions_.end() && it->second.first == value) return;
  conditions_[type] = {value, Now()};
}

void ProcessKubelet::PodWorker::WriteStatus() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (halted_) return;  // a node that goes down writes nothing
  }
  auto stateJson = [](const ContainerState& s) {
    Json out = Json::object();
    Json inner = Json::object();
    switch (s.kind) {
      case Kind::kWaiting:
        inner["reason"] = Json::string(s.reason);
        if (!s.message.empty()) inner["message"] = Json::string(s.message);
        out["waiting"] = inner;
        break;
      case Kind::kRunning:
        inner["startedAt"] = Json::string(s.startedAt);
        out["running"] = inner;
        break;
      case Kind::kTerminated:
        inner["exitCode"] = Json::number(s.exitCode);
        if (s.signal != 0) inner["signal"] = Json::number(s.signal);
        inner["reason"] = Json::string(s.reason);
        if (!s.message.empty()) inner["message"] = Json::string(s.message);
        inner["startedAt"] = Json::string(s.startedAt);
        inner["finishedAt"] = Json::string(s.finishedAt);
        out["terminated"] = inner;
        break;
    }
    return out;
  };
  Json pod = CurrentPod();
  Json status = Json::object();
  status["phase"] = Json::string(phase_);
  status["podIP"] = Json::string(ip_);
  status["podIPs"][0]["ip"] = Json::string(ip_);
  status["hostIP"] = Json::string("127.0.0.1");
  status["hostIPs"][0]["ip"] = Json::string("127.0.0.1");
  status["startTime"] = Json::string(startTime_);
  status["qosClass"] = Json::string("BestEffort");
  Json conditions = Json::array();
  size_t n = 0;
  for (const char* type : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
    Json c = Json::object();
    c["type"] = Json::string(type);
    c["status"] = Json::string(conditions_[type].first ? "True" : "False");
    c["lastTransitionTime"] = Json::string(conditions_[type].second);
    if (!conditions_[type].first) c["reason"] = Json::string("ContainersNotReady");
    conditions[n++] = c;
  }
  status["conditions"] = conditions;
  const Json& containers = Field(pod, {"spec", "containers"});
  const Json container =
      containers.is_array() && containers.as_array().size() > 0 ? containers.as_array().at(0) : Json::object();
  Json cs = Json::object();
  cs["name"] = Json::string(GetString(container, {"name"}));
  cs["image"] = Json::string(GetString(container, {"image"}));
  cs["imageID"] = Json::string("");
  pid_t pid = pid_.load();
  if (pid > 0) cs["containerID"] = Json::string("process://" + kubelet_->options_.nodeName + "/" + std::to_string(pid));
  cs["ready"] = Json::boolean(ready_);
  cs["started"] = Json::boolean(started_);
  cs["restartCount"] = Json::number(restartCount_);
  cs["state"] = stateJson(state_);
  cs["lastState"] = lastState_ ? stateJson(*lastState_) : Json::object();
  status["containerStatuses"][0] = cs;
  if (status == written_) return;
  Json patch = Json::object();
  patch["metadata"]["uid"] = Json::string(uid_);  // a precondition: never a namesake's status
  patch["status"] = status;
  auto result = kubelet_->client_->MergePatch(PodResource(), ns_, name_, patch, /*status=*/true);
  if (!result.ok()) {
    if (result.status().code() != StatusCode::kNotFound) {
      spdlog::warn("could not write pod status pod={} error=\"{}\"", PodName(ns_, name_), result.status().message());
    }
    return;
  }
  if (kube::UidOf(*result) != uid_) return;  // a namesake: not ours to describe (rare race)
  written_ = status;
}

// ---------------------------------------------------------------------------

ProcessKubelet::ProcessKubelet(KubeletOptions options) : options_(std::move(options)) {
  if (!options_.root.empty()) options_.root = AbsolutePath(options_.root);
}

ProcessKubelet::~ProcessKubelet() { Stop(); }

Status ProcessKubelet::Start() {
  if (options_.root.empty()) return Status::Invalid("kubelet: --root is required");
  if (!ParseIpv4(options_.ipBase) || (*ParseIpv4(options_.ipBase) >> 24) != 127) {
    return Status::Invalid("kubelet: --ip-base " + options_.ipBase + ": must be an address in 127.0.0.0/8");
  }
  // Pods that run as another user reach their directories through these.
  for (const char* sub : {"/pods", "/volumes"}) {
    PGRS_RETURN_IF_ERROR(MakeDirs(options_.root + sub));
    if (chmod((options_.root + sub).c_str(), 0755) != 0) {
      return Status::Unavailable("kubelet: " + options_.root + sub + ": " + std::strerror(errno));
    }
  }
  for (std::string dir = options_.root; dir.size() > 1; dir = dir.substr(0, std::max<size_t>(1, dir.rfind('/')))) {
    struct stat st;
    if (stat(dir.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
      spdlog::warn("kubelet root not traversable by other users: Pods that run as non-root may fail dir={} mode={:o}",
                   dir, st.st_mode & 07777);
    }
  }
  if (!options_.podTokenFile.empty()) {
    auto token = ReadFile(options_.podTokenFile);
    if (!token.ok()) return token.status().WithContext("kubelet: --pod-token");
    podToken_ = *token;
    fixedPodToken_ = true;
  }
  kube::ClientOptions clientOptions;
  clientOptions.userAgent = "pgrs-test-kubelet";
  clientOptions.retryBackoff = {milliseconds(50), milliseconds(1000), 2.0, 0.2};
  clientOptions.requestTimeout = milliseconds(10000);
  auto client = kube::Client::Create(options_.config, clientOptions);
  if (!client.ok()) return client.status().WithContext("kubelet");
  client_ = std::move(client.value());
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = true;
    stopping_ = false;
  }
  kube::InformerOptions informerOptions;
  informerOptions.retry = {milliseconds(50), milliseconds(2000), 2.0, 0.2};
  claims_ = std::make_unique<kube::Informer>(
      client_.get(), ClaimResource(), options_.namespace_, informerOptions,
      kube::InformerHandlers{[this](const Json&) { wake_.notify_all(); },
                             [this](const Json&, const Json&) { wake_.notify_all(); },
                             [this](const Json& claim) {
                               std::lock_guard<std::mutex> lock(mu_);
                               deletedClaims_[kube::KeyOf(claim)] = kube::UidOf(claim);
                               wake_.notify_all();
                             }});
  claims_->Start();
  pods_ = std::make_unique<kube::Informer>(
      client_.get(), PodResource(), options_.namespace_, informerOptions,
      kube::InformerHandlers{[this](const Json& pod) { OnPod(pod); },
                             [this](const Json&, const Json& pod) { OnPod(pod); },
                             [this](const Json& pod) { OnPodDeleted(pod); }});
  if (!claims_->WaitForSync(std::chrono::seconds(30))) {
    Stop();
    return Status::Unavailable("kubelet: persistentvolumeclaims did not sync from " + options_.config.server);
  }
  pods_->Start();
  housekeeper_ = std::thread([this] { Housekeeping(); });
  if (!pods_->WaitForSync(std::chrono::seconds(30))) {
    Stop();
    return Status::Unavailable("kubelet: pods did not sync from " + options_.config.server);
  }
  spdlog::info("kubelet started node={} root={} namespace={} server={}", options_.nodeName, options_.root,
               options_.namespace_.empty() ? "(all)" : options_.namespace_, options_.config.server);
  return Status::Ok();
}

void ProcessKubelet::OnPod(const Json& pod) {
  std::string node = GetString(pod, {"spec", "nodeName"});
  if (!node.empty() && node != options_.nodeName) return;  // another node's
  std::string uid = kube::UidOf(pod);
  bool terminating = kube::GetField(pod, {"metadata", "deletionTimestamp"}) != nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  auto it = workers_.find(uid);
  if (it != workers_.end()) {
    if (terminating) it->second->Delete(pod, true);
    else it->second->Update(pod);
    return;
  }
  if (terminating) {
    if (node == options_.nodeName && GetInt(pod, {"metadata", "deletionGracePeriodSeconds"}).value_or(0) > 0) {
      orphanedDeletions_[kube::KeyOf(pod)] = uid;
      wake_.notify_all();
    }
    return;
  }
  std::string phase = GetString(pod, {"status", "phase"});
  if (phase == "Succeeded" || phase == "Failed") return;  // finished before we came up
  if (cordoned_ && node.empty()) return;  // Pending until the node is uncordoned
  std::string ip = AllocateIp(GetString(pod, {"status", "podIP"}));
  if (ip.empty()) {
    spdlog::error("no free pod address pod={}", PodName(kube::NamespaceOf(pod), kube::NameOf(pod)));
    return;
  }
  auto worker = std::make_shared<PodWorker>(this, pod, ip);
  workers_[uid] = worker;
  worker->Start();
}

void ProcessKubelet::Cordon(bool unschedulable) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cordoned_ == unschedulable) return;
    cordoned_ = unschedulable;
  }
  spdlog::info("node {} node={}", unschedulable ? "cordoned" : "uncordoned", options_.nodeName);
  if (unschedulable || !pods_) return;
  for (const auto& pod : pods_->List()) OnPod(pod);  // the Pods that waited
}

void ProcessKubelet::OnPodDeleted(const Json& pod) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(kube::UidOf(pod));
  if (it != workers_.end()) it->second->Delete(pod, false);
}

// Called with mu_ held.
std::string ProcessKubelet::AllocateIp(const std::string& wanted) {
  if (auto ip = ParseIpv4(wanted); ip && (*ip >> 24) == 127 && !heldIps_.count(wanted)) {
    heldIps_.insert(wanted);
    return wanted;
  }
  uint32_t base = *ParseIpv4(options_.ipBase);
  if (nextIp_ == 0) nextIp_ = base;
  for (uint32_t attempts = 0; attempts < (1u << 24); ++attempts) {
    uint32_t candidate = nextIp_;
    nextIp_ = nextIp_ >= 0x7ffffffe ? base : nextIp_ + 1;
    uint32_t last = candidate & 0xff;
    if (last == 0 || last == 255) continue;
    std::string ip = FormatIpv4(candidate);
    if (heldIps_.insert(ip).second) return ip;
  }
  return "";
}

void ProcessKubelet::ReleaseIp(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  heldIps_.erase(ip);
}

Result<std::string> ProcessKubelet::AcquireClaim(PodWorker* worker, const std::string& ns, const std::string& claim,
                                                 bool* sharedMount) {
  std::string key = kube::MakeKey(ns, claim);
  auto object = claims_->Get(key);
  if (!object) return Status::NotFound("persistentvolumeclaim \"" + claim + "\" not found");
  std::string dir = VolumeDir(ns, claim);
  std::lock_guard<std::mutex> lock(mu_);
  // A claim deleted and made again: the new one starts empty.
  if (auto deleted = deletedClaims_.find(key); deleted != deletedClaims_.end()) {
    bool inUse = false;
    for (const auto& [uid, other] : workers_) inUse = inUse || (other.get() != worker && other->claims.count(key));
    if (!inUse) {
      (void)RemoveTree(dir);
      spdlog::info("removed volume of deleted claim claim={} dir={}", key, dir);
      deletedClaims_.erase(deleted);
    }
  }
  if (!PathExists(dir)) {
    // As a local PersistentVolume starts: root's, 0755. A non-root Pod
    // writes there only through fsGroup.
    PGRS_RETURN_IF_ERROR(MakeDirs(dir));
    if (chown(dir.c_str(), 0, 0) != 0 || chmod(dir.c_str(), 0755) != 0) {
      return Status::Unavailable("volume " + dir + ": " + std::strerror(errno));
    }
  }
  // A deleted Pod whose container is gone has its volumes unmounted (a real
  // kubelet deletes the Pod object only after that).
  *sharedMount = false;
  for (const auto& [uid, other] : workers_) {
    bool mounted = !other->done() && other->claims.count(key) && (!other->deleted() || other->pid() > 0);
    *sharedMount = *sharedMount || (other.get() != worker && mounted);
  }
  worker->claims.insert(key);
  return dir;
}

Status ProcessKubelet::EnsureMountPoint(const std::string& target, bool file) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string path;
  size_t pos = 1;
  while (true) {
    size_t slash = target.find('/', pos);
    path = target.substr(0, slash);
    bool last = slash == std::string::npos;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      if (last && file) {
        int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return Status::Unavailable("mount point " + path + ": " + std::strerror(errno));
        close(fd);
      } else if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::Unavailable("mount point " + path + ": " + std::strerror(errno));
      }
      createdMountPoints_.push_back(path);
    }
    if (last) return Status::Ok();
    pos = slash + 1;
  }
}

void ProcessKubelet::Housekeeping() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // Finished workers.
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->second->done() && it->second->deleted()) {
        auto worker = it->second;
        it = workers_.erase(it);
        lock.unlock();
        worker->Join();
        lock.lock();
      } else {
        ++it;
      }
    }
    std::map<std::string, std::string> orphans;
    orphans.swap(orphanedDeletions_);
    lock.unlock();
    for (const auto& [key, uid] : orphans) {
      std::string ns, name;
      kube::SplitKey(key, &ns, &name);
      kube::DeleteOptions atOnce;
      atOnce.gracePeriodSeconds = 0;
      atOnce.preconditionUid = uid;
      Status s = client_->Delete(PodResource(), ns, name, atOnce);
      spdlog::info("deleted terminating pod that runs nowhere pod={} uid={} result=\"{}\"", key, uid,
                   s.ok() ? "ok" : s.message());
    }
    SyncVolumes();
    lock.lock();
    wake_.wait_for(lock, milliseconds(200));
  }
}

void ProcessKubelet::SyncVolumes() {
  // Every claim is Bound at once: the volume is a directory made on first use.
  for (const auto& claim : claims_->List()) {
    if (GetString(claim, {"status", "phase"}) == "Bound") continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (boundClaims_.count(kube::UidOf(claim))) continue;
    }
    Json patch = Json::object();
    patch["status"]["phase"] = Json::string("Bound");
    if (const Json* modes = kube::GetField(claim, {"spec", "accessModes"})) patch["status"]["accessModes"] = *modes;
    if (const Json* size = kube::GetField(claim, {"spec", "resources", "requests", "storage"})) {
      patch["status"]["capacity"]["storage"] = *size;
    }
    auto result = client_->MergePatch(ClaimResource(), kube::NamespaceOf(claim), kube::NameOf(claim), patch, true);
    if (result.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      boundClaims_.insert(kube::UidOf(claim));
      spdlog::info("bound claim claim={} dir={}", kube::KeyOf(claim),
                   VolumeDir(kube::NamespaceOf(claim), kube::NameOf(claim)));
    }
  }
  // Deleted claims lose their directory once no Pod mounts them.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = deletedClaims_.begin(); it != deletedClaims_.end();) {
    bool inUse = false;
    for (const auto& [uid, worker] : workers_) inUse = inUse || worker->claims.count(it->first) > 0;
    auto current = claims_->Get(it->first);
    if (inUse || (current && kube::UidOf(*current) == it->second)) {
      ++it;
      continue;
    }
    std::string ns, name;
    kube::SplitKey(it->first, &ns, &name);
    if (current) {
      // Made again meanwhile: AcquireClaim empties it before its first use.
      ++it;
      continue;
    }
    (void)RemoveTree(VolumeDir(ns, name));
    boundClaims_.erase(it->second);
    spdlog::info("removed volume of deleted claim claim={} dir={}", it->first, VolumeDir(ns, name));
    it = deletedClaims_.erase(it);
  }
}

void ProcessKubelet::StopAll(bool kill) {
  std::vector<std::shared_ptr<PodWorker>> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    running_ = false;
    stopping_ = true;
    for (auto& [uid, worker] : workers_) {
      worker->Halt(kill);
      workers.push_back(worker);
    }
    wake_.notify_all();
  }
  if (client_) client_->Shutdown();  // pending status writes fail fast: nothing is written on the way down
  if (pods_) pods_->Stop();
  if (claims_) claims_->Stop();
  {
    // Workers made between the snapshot and the informer's stop.
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [uid, worker] : workers_) {
      if (std::find(workers.begin(), workers.end(), worker) == workers.end()) {
        worker->Halt(kill);
        workers.push_back(worker);
      }
    }
  }
  for (auto& worker : workers) worker->Join();
  if (housekeeper_.joinable()) housekeeper_.join();
  std::lock_guard<std::mutex> lock(mu_);
  workers_.clear();
  heldIps_.clear();
  // rmdir of a directory that is a mount point in another mount namespace
  // unmounts it there (Linux >= 3.18): another kubelet's Pods on the same
  // host path (/var/lib/pgrs ...) would lose their volumes.
  std::set<std::string> inUse =
      createdMountPoints_.empty() ? std::set<std::string>() : MountPointsOfOtherNamespaces();
  for (auto it = createdMountPoints_.rbegin(); it != createdMountPoints_.rend(); ++it) {
    struct stat st;
    if (lstat(it->c_str(), &st) != 0) continue;
    char resolved[PATH_MAX];
    if (realpath(it->c_str(), resolved) != nullptr && inUse.count(resolved)) continue;
    if (S_ISDIR(st.st_mode)) rmdir(it->c_str());  // only when empty
    else if (st.st_size == 0) unlink(it->c_str());
  }
  createdMountPoints_.clear();
  spdlog::info("kubelet stopped node={} killed={}", options_.nodeName, kill);
}

void ProcessKubelet::Stop() { StopAll(false); }

void ProcessKubelet::KillAll() { StopAll(true); }

std::shared_ptr<ProcessKubelet::PodWorker> ProcessKubelet::FindWorker(const std::string& ns,
                                                                      const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<PodWorker> found;
  for (const auto& [uid, worker] : workers_) {
    if (worker->ns() != ns || worker->name() != name) continue;
    if (!found || !worker->deleted()) found = worker;
  }
  return found;
}

pid_t ProcessKubelet::PodPid(const std::string& ns, const std::string& name) const {
  auto worker = FindWorker(ns, name);
  return worker ? worker->pid() : -1;
}

std::string ProcessKubelet::PodIp(const std::string& ns, const std::string& name) const {
  auto worker = FindWorker(ns, name);
  return worker ? worker->ip() : "";
}

std::string ProcessKubelet::PodDir(const std::string& ns, const std::string& name) const {
  auto worker = FindWorker(ns, name);
  return worker ? worker->dir() : "";
}

std::string ProcessKubelet::VolumeDir(const std::string& ns, const std::string& claim) const {
  return options_.root + "/volumes/" + ns + "/" + claim;
}

}  // namespace pgrs::e2e
