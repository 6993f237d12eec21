#include "operator/util/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <cstdlib>
#include <thread>

#include "operator/util/files.h"

extern char** environ;

namespace pgrs {

Result<UserIds> LookupUser(const std::string& name) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return Status::NotFound("OS user " + name + " does not exist");
  }
  return UserIds{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir};
}

bool RunningAsRoot() { return geteuid() == 0; }

Result<UserIds> PostgresUser() {
  if (RunningAsRoot()) {
    auto user = LookupUser("postgres");
    if (!user.ok()) {
      return Status::Unavailable("PostgreSQL refuses to run as root and the OS user postgres does not exist "
                                 "(install postgresql, or run pgrs as an unprivileged user)");
    }
    return user;
  }
  struct passwd* pw = getpwuid(geteuid());
  return UserIds{geteuid(), getegid(), pw ? pw->pw_name : "", pw ? pw->pw_dir : ""};
}

namespace {

std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> env;
  std::vector<std::string> order;
  auto add = [&](const std::string& kv) {
    auto eq = kv.find('=');
    std::string key = eq == std::string::npos ? kv : kv.substr(0, eq);
    if (!env.count(key)) order.push_back(key);
    env[key] = kv;
  };
  for (char** e = environ; *e != nullptr; ++e) add(*e);
  for (const auto& kv : extra) add(kv);
  std::vector<std::string> out;
  for (const auto& key : order) out.push_back(env[key]);
  return out;
}

// Only async-signal-safe calls between fork and exec: we may have threads.
[[noreturn]] void ChildExec(const ProcessSpec& spec, char* const* argv, char* const* envp, int outFd,
                            pid_t parent, const gid_t* groups, int ngroups) {
  if (spec.newProcessGroup) setpgid(0, 0);
  if (spec.deathSignal != 0) {
    prctl(PR_SET_PDEATHSIG, spec.deathSignal);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
  }
  // Signals blocked or ignored by our threads must not leak into the child.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < 32; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  }
  if (outFd >= 0) {
    dup2(outFd, STDOUT_FILENO);
    dup2(outFd, STDERR_FILENO);
    if (outFd > STDERR_FILENO) close(outFd);
  }
  int devnull = open(spec.stdinFile.empty() ? "/dev/null" : spec.stdinFile.c_str(), O_RDONLY);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    if (devnull > STDERR_FILENO) close(devnull);
  }
  if (spec.runAs) {
    if (setgroups(static_cast<size_t>(ngroups), groups) != 0 || setgid(spec.runAs->gid) != 0 ||
        setuid(spec.runAs->uid) != 0) {
      const char msg[] = "pgrs: cannot drop privileges\n";
      (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
      _exit(126);
    }
  }
  if (!spec.workingDir.empty() && chdir(spec.workingDir.c_str()) != 0) {
    const char msg[] = "pgrs: cannot enter working directory\n";
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    _exit(126);
  }
  execve(argv[0], argv, envp);
  const char msg[] = "pgrs: exec failed: ";
  (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
  (void)!write(STDERR_FILENO, argv[0], strlen(argv[0]));
  (void)!write(STDERR_FILENO, "\n", 1);
  _exit(127);
}

}  // namespace

Result<pid_t> SpawnProcess(const ProcessSpec& spec, int* outputPipe) {
  if (spec.argv.empty()) return Status::Invalid("empty command");
  if (access(spec.argv[0].c_str(), X_OK) != 0) {
    return Status::Unavailable(spec.argv[0] + ": not executable: " + std::strerror(errno));
  }
  // Everything the child needs is prepared before fork.
  std::vector<std::string> envStrings = MergedEnvironment(spec.env);
  if (spec.runAs) {
    envStrings = MergedEnvironment([&] {
      auto extra = spec.env;
      extra.insert(extra.begin(), {"HOME=" + spec.runAs->home, "USER=" + spec.runAs->name,
                                   "LOGNAME=" + spec.runAs->name});
      return extra;
    }());
  }
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : envStrings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::vector<gid_t> groups;
  if (spec.runAs) {
    int n = 64;
    groups.resize(static_cast<size_t>(n));
    if (getgrouplist(spec.runAs->name.c_str(), spec.runAs->gid, groups.data(), &n) < 0) {
      groups.resize(static_cast<size_t>(n));
      getgrouplist(spec.runAs->name.c_str(), spec.runAs->gid, groups.data(), &n);
    }
    groups.resize(static_cast<size_t>(n));
  }

  int outFd = -1;
  int pipeFds[2] = {-1, -1};
  if (outputPipe != nullptr) {
    if (pipe2(pipeFds, O_CLOEXEC) != 0) return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
    outFd = pipeFds[1];
  } else if (!spec.outputFile.empty()) {
    outFd = open(spec.outputFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (outFd < 0) return Status::Unavailable(spec.outputFile + ": " + std::strerror(errno));
    if (spec.runAs) (void)!fchown(outFd, spec.runAs->uid, spec.runAs->gid);
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    if (outFd >= 0) close(outFd);
    if (pipeFds[0] >= 0) close(pipeFds[0]);
    return Status::Unavailable(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    // dup2 clears O_CLOEXEC on the duplicate, so the child keeps its output.
    ChildExec(spec, argv.data(), envp.data(), outFd, parent, groups.data(), static_cast<int>(groups.size()));
  }
  if (spec.newProcessGroup) setpgid(pid, pid);  // both sides, so no race
  if (outFd >= 0) close(outFd);
  if (outputPipe != nullptr) *outputPipe = pipeFds[0];
  return pid;
}

Result<CommandResult> RunCommand(const ProcessSpec& spec, std::chrono::milliseconds timeout,
                                 const std::function<void(const std::string&)>& onOutput,
                                 const std::atomic<bool>* cancelled) {
  int fd = -1;
  auto pid = SpawnProcess(spec, &fd);
  if (!pid.ok()) return pid.status();
  CommandResult result;
  std::string partial;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timedOut = false;
  bool wasCancelled = false;
  char buf[4096];
  while (true) {
    if (cancelled != nullptr && cancelled->load()) {
      wasCancelled = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child (and its children) closed the pipe
    result.output.append(buf, static_cast<size_t>(n));
    if (result.output.size() > 65536) result.output.erase(0, result.output.size() - 65536);
    if (onOutput) {
      for (ssize_t i = 0; i < n; ++i) {
        char c = buf[i];
        if (c == '\n' || c == '\r') {
          if (!partial.empty()) onOutput(partial);
          partial.clear();
        } else {
          partial += c;
        }
      }
    }
  }
  close(fd);
  if (onOutput && !partial.empty()) onOutput(partial);
  if (timedOut || wasCancelled) {
    kill(-*pid, SIGKILL);
    kill(*pid, SIGKILL);
    int status;
    waitpid(*pid, &status, 0);
    if (wasCancelled) return Status::Unavailable(spec.argv[0] + ": cancelled");
    return Status::Unavailable(spec.argv[0] + ": timed out after " + std::to_string(timeout.count() / 1000) + "s");
  }
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exitCode = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.termSignal = WTERMSIG(status);
  }
  return result;
}

std::optional<int> TryReap(pid_t pid) {
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG);
  if (r == pid) return status;
  if (r < 0 && errno == ECHILD) return 0;  // already reaped elsewhere
  return std::nullopt;
}

bool StopChild(pid_t pid, int signal, std::chrono::milliseconds grace) {
  if (pid <= 0) return true;
  kill(pid, signal);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (TryReap(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  return false;
}

bool ProcessExists(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

std::optional<uint64_t> ProcessStartTime(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return std::nullopt;
  // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return std::nullopt;
  std::vector<std::string> fields;  // from field 3 (state) on
  size_t at = close + 2;
  while (at < stat->size()) {
    size_t space = stat->find(' ', at);
    if (space == std::string::npos) space = stat->size();
    fields.push_back(stat->substr(at, space - at));
    at = space + 1;
  }
  if (fields.size() < 20 || fields[0] == "Z" || fields[0] == "X") return std::nullopt;
  return std::strtoull(fields[19].c_str(), nullptr, 10);  // field 22: starttime
}

std::vector<pid_t> ListProcessIds() {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = std::atoi(entry->d_name);
    if (pid > 0) out.push_back(pid);
  }
  closedir(proc);
  return out;
}

std::vector<std::string> ProcessArguments(pid_t pid) {
  std::vector<std::string> out;
  auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmdline.ok()) return out;
  size_t at = 0;
  while (at < cmdline->size()) {
    size_t end = cmdline->find('\0', at);
    if (end == std::string::npos) end = cmdline->size();
    out.push_back(cmdline->substr(at, end - at));
    at = end + 1;
  }
  return out;
}

bool StopProcess(pid_t pid, uint64_t startTime, int signal, std::chrono::milliseconds grace) {
  auto gone = [&] {
    TryReap(pid);  // when it is our child; a no-op otherwise
    return ProcessStartTime(pid) != startTime;
  };
  if (gone()) return true;
  kill(pid, signal);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (gone()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!gone()) kill(pid, SIGKILL);
  for (int i = 0; i < 250 && !gone(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return false;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

}  // namespace pgrs
