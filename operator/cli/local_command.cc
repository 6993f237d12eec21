// `pgrs local ...`: the embedded control plane and its client verbs.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "operator/agent/archiving.h"
#include "operator/agent/restore.h"
#include "operator/api/types.h"
#include "operator/executor/executor.h"
#include "operator/cli/commands.h"
#include "operator/local/backup.h"
#include "operator/local/controller.h"
#include "operator/local/repository_secrets.h"
#include "operator/local/runtime.h"
#include "operator/util/duration.h"
#include "operator/util/files.h"
#include "operator/util/log.h"
#include "operator/util/process.h"
#include "reconcilers/backup.h"
#include "reconcilers/local_control_plane.h"
#include "reconcilers/replicaset.h"

namespace pgrs::cli {

using namespace std::chrono_literals;

namespace {

void LocalUsage() {
  std::fprintf(stderr,
               "usage: pgrs local VERB --state-dir DIR ...\n"
               "\n"
               "  run     --state-dir DIR                          run the control plane in the foreground\n"
               "  apply   --state-dir DIR -f FILE                  validate and store a PostgresReplicaSet\n"
               "  get     --state-dir DIR [NAME] [-o table|yaml|json]\n"
               "  wait    --state-dir DIR NAME --for condition=Ready [--timeout 120s]\n"
               "  delete  --state-dir DIR NAME [--timeout 120s]    stop and remove a replica set\n"
               "  psql    --state-dir DIR NAME [--replica] [-- PSQL-ARGS]\n"
               "  switchover --state-dir DIR NAME --to INSTANCE [--timeout 120s]   move the primary, no lost commit\n"
               "  backup  --state-dir DIR NAME [--type full|diff|incr] [--timeout 10m]\n"
               "          take a pgBackRest backup of a set with spec.backup (from a streaming standby\n"
               "          unless spec.backup.fromStandby is false, else from the primary), wait for it and\n"
               "          print its label; exit code 1 when it fails\n");
}

// Parsed `--flag value` options and positional arguments.
struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
  std::vector<std::string> passthrough;  // after "--"
  std::string error;
};

Args ParseArgs(const std::vector<std::string>& args, const std::vector<std::string>& valueFlags,
               const std::vector<std::string>& boolFlags) {
  Args out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.passthrough.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    std::string key = a, value;
    bool inlineValue = false;
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      key = a.substr(0, a.find('='));
      value = a.substr(a.find('=') + 1);
      inlineValue = true;
    }
    if (std::find(valueFlags.begin(), valueFlags.end(), key) != valueFlags.end()) {
      if (!inlineValue) {
        if (i + 1 >= args.size()) {
          out.error = key + " needs a value";
          return out;
        }
        value = args[++i];
      }
      out.flags[key] = value;
    } else if (std::find(boolFlags.begin(), boolFlags.end(), key) != boolFlags.end()) {
      out.flags[key] = "true";
    } else if (!a.empty() && a[0] == '-') {
      out.error = "unknown flag " + a;
      return out;
    } else {
      out.positional.push_back(a);
    }
  }
  return out;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "pgrs";
  buf[n] = 0;
  return buf;
}

// PostgreSQL refuses to follow a data directory path it cannot traverse.
Status CheckReachableByPostgres(const std::string& dir) {
  if (!RunningAsRoot()) return Status::Ok();
  auto user = PostgresUser();
  if (!user.ok()) return user.status();
  ProcessSpec spec;
  spec.argv = {"/usr/bin/test", "-x", dir};
  spec.runAs = *user;
  auto result = RunCommand(spec, 10s);
  if (result.ok() && result->ok()) return Status::Ok();
  return Status::Invalid("state directory " + dir + " is not reachable by the OS user postgres (PostgreSQL runs "
                         "as postgres and needs execute permission on every parent directory); choose one under "
                         "/var/lib or /tmp, or chmod o+x its parents");
}

int Run(const Args& args) {
  std::string dir = AbsolutePath(args.flags.at("--state-dir"));
  LogFormat format = LogFormat::kText;
  if (args.flags.count("--log-format") && !ParseLogFormat(args.flags.at("--log-format"), &format)) {
    std::fprintf(stderr, "pgrs local run: --log-format must be text, json or auto\n");
    return 2;
  }
  InitLogging("local", format, args.flags.count("--log-level") ? args.flags.at("--log-level") : "info");

  // Block the stop signals before any thread exists; this thread takes
  // them with sigtimedwait between passes.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto lock = local::RunLock::Acquire(dir);
  if (!lock.ok()) {
    spdlog::error("{}", lock.status().message());
    return 1;
  }
  if (Status st = CheckReachableByPostgres(dir); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  local::LocalStore store(dir);
  // DIR/control-plane.json tells `get` and `wait` whether the status they
  // read is current: a pass finished since this run started, and when.
  reconcilers::ControlPlaneRecord record{getpid(), api::FormatTime(std::chrono::system_clock::now()), "", ""};
  auto writeRecord = [&] {
    if (Status st = store.WriteControlPlane(record); !st.ok()) {
      spdlog::warn("cannot write {}/control-plane.json error=\"{}\"", dir, st.message());
    }
  };
  writeRecord();
  local::LocalRuntime runtime(store, SelfExe());
  // What a crashed `run` left running is adopted, not started again.
  const int adopted = runtime.AdoptRunningAgents();
  local::LocalController controller(store, runtime);
  spdlog::info("control plane started stateDir={} pid={} adoptedAgents={}", dir, getpid(), adopted);
  while (true) {
    auto delay = controller.ReconcileAll();
    record.lastPassTime = api::FormatTime(std::chrono::system_clock::now());
    writeRecord();
    timespec timeout{static_cast<time_t>(delay.count() / 1000), static_cast<long>((delay.count() % 1000) * 1000000)};
    int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("stopping control plane signal={}; stopping agents and PostgreSQL", sig);
      break;
    }
  }
  runtime.StopAll();
  controller.MarkAllStopped();
  record.stoppedTime = api::FormatTime(std::chrono::system_clock::now());
  writeRecord();
  spdlog::info("control plane stopped stateDir={}", dir);
  return 0;
}

// What the first primary's agent will find in the repository of
// spec.bootstrap.recovery: its stanza, a backup for the target, a target
// that is not in the future.
Status CheckRestoreSource(const api::PostgresReplicaSet& set, const executor::SetSecrets& secrets) {
  const api::RecoverySpec& recovery = *set.spec.bootstrap->recovery;
  if (recovery.target && !recovery.target->time.empty()) {
    auto target = api::ParseTime(recovery.target->time);
    if (target && *target > std::chrono::system_clock::now()) {
      return Status::Invalid("spec.bootstrap.recovery.target.time: " + recovery.target->time +
                             " is in the future: nothing is archived after now");
    }
  }
  agent::RestoreConfig restore = reconcilers::RestoreConfigFor(recovery);
  executor::AddRestoreSecrets(restore, secrets);
  std::optional<UserIds> runAs;
  if (RunningAsRoot()) {
    auto user = PostgresUser();
    if (!user.ok()) return user.status();
    runAs = *user;
  }
  return agent::FindRestoreBackup(agent::InstanceLayout().pgbackrest, restore, runAs, set.spec.postgres.version)
      .status();
}

int Apply(const Args& args) {
  if (!args.flags.count("-f")) {
    std::fprintf(stderr, "pgrs local apply: -f FILE is required\n");
    return 2;
  }
  std::string file = args.flags.at("-f");
  Result<std::string> text = file == "-" ? Result<std::string>(std::string(std::istreambuf_iterator<char>(std::cin), {}))
                                         : ReadFile(file);
  if (!text.ok()) {
    std::fprintf(stderr, "error: %s\n", text.status().message().c_str());
    return 1;
  }
  auto parsed = api::ParseManifest(*text);
  if (!parsed.object) {
    for (const auto& e : parsed.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
    return 1;
  }
  if (auto errors = api::ValidateForMode(*parsed.object, api::Mode::kLocal); !errors.empty()) {
    for (const auto& e : errors) {
      std::fprintf(stderr, "error: postgresreplicaset %s: %s\n", parsed.object->metadata.name.c_str(),
                   e.ToString().c_str());
    }
    return 1;
  }
  // Local mode reads the repositories' secrets from files: a missing or
  // malformed one is refused here, before anything is stored. A restore is
  // checked against its repository, for a set that does not exist yet.
  const api::PostgresReplicaSet& object = *parsed.object;
  local::LocalStore store(args.flags.at("--state-dir"));
  const bool restoring = object.spec.bootstrap && object.spec.bootstrap->recovery &&
                         store.Get(object.metadata.name).status().code() == StatusCode::kNotFound;
  executor::SetSecrets secrets;
  Status checked = local::ReadRepositorySecrets(object, store.stateDir(), restoring, secrets);
  if (checked.ok() && restoring) checked = CheckRestoreSource(object, secrets);
  if (!checked.ok()) {
    std::fprintf(stderr, "error: postgresreplicaset %s: %s\n", object.metadata.name.c_str(), checked.message().c_str());
    return 1;
  }
  std::string outcome;
  auto stored = store.Apply(*parsed.object, &outcome);
  if (!stored.ok()) {
    std::fprintf(stderr, "error: %s\n", stored.status().message().c_str());
    return 1;
  }
  std::printf("postgresreplicaset.pgrs.dev/%s %s\n", stored->metadata.name.c_str(), outcome.c_str());
  return 0;
}

std::string Pad(const std::string& s, size_t width) { return s.size() >= width ? s + " " : s + std::string(width - s.size() + 1, ' '); }

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += i + 1 == row.size() ? row[i] : Pad(row[i], widths[i] + 1);
    out += line + "\n";
  }
  return out;
}

std::string Dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string FormatBytes(std::optional<int64_t> bytes) { return bytes ? std::to_string(*bytes) : "-"; }

std::string FormatSeconds(std::optional<double> seconds) {
  if (!seconds) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", *seconds);
  return buf;
}

// "12s ago", "3m ago", "2h ago", "4d ago"; "" for a time that cannot be read.
std::string Ago(const std::string& rfc3339, std::chrono::system_clock::time_point now) {
  auto t = api::ParseTime(rfc3339);
  if (!t) return "";
  const int64_t s = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(now - *t).count());
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  if (s < 172800) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

// status.backup in two lines: the newest backup, and the archive's lag
// (time since the last archived WAL segment) or its failure.
std::string BackupLines(const api::BackupStatus& b, std::chrono::system_clock::time_point now) {
  std::string out = "backups: ";
  if (b.backups.empty()) {
    out += "none in the repository";
  } else {
    const api::BackupRecord& last = b.backups.back();
    out += std::to_string(b.backups.size()) + ", last " + last.label + " (" + last.type + ") finished " +
           last.stopTime + " (" + Ago(last.stopTime, now) + "); recoverable " + b.firstRecoverableTime + " .. " +
           b.lastRecoverableTime;
  }
  out += "\narchive: ";
  if (b.archivingFailing) {
    out += "FAILING: " + b.lastFailedWal + " failed " + b.lastFailedTime + " (" + std::to_string(b.archiveFailedCount) +
           " failures); ";
  }
  out += b.lastArchivedWal.empty() ? "nothing archived yet"
                                   : "last " + b.lastArchivedWal + " " + b.lastArchivedTime + " (" +
                                         Ago(b.lastArchivedTime, now) + ")";
  if (!b.repositoryError.empty()) out += "\nrepository: " + b.repositoryError;
  if (const auto& run = b.lastScheduledBackup) {
    out += "\nscheduled: last " + run->type + " of " + run->scheduledTime + " " + run->outcome +
           (run->label.empty() ? "" : " " + run->label) + (run->message.empty() ? "" : ": " + run->message);
  }
  return out + "\n";
}

int Get(const Args& args) {
  local::LocalStore store(args.flags.at("--state-dir"));
  std::string output = args.flags.count("-o") ? args.flags.at("-o") : "table";
  if (output != "table" && output != "yaml" && output != "json") {
    std::fprintf(stderr, "pgrs local get: -o must be table, yaml or json\n");
    return 2;
  }
  // Without a control plane that finishes passes, the stored status is
  // only what it last observed: its conditions are Unknown.
  const reconcilers::ControlPlaneState controlPlane = store.AssessControlPlane();
  std::vector<api::PostgresReplicaSet> sets;
  std::vector<std::string> names = args.positional.empty() ? store.ListNames() : args.positional;
  for (const auto& name : names) {
    auto set = store.Get(name);
    if (!set.ok()) {
      std::fprintf(stderr, "error: %s\n", set.status().message().c_str());
      return 1;
    }
    set->status = reconcilers::StatusAsSeen(set->status, controlPlane);
    sets.push_back(*set);
  }
  if (output == "json") {
    for (const auto& s : sets) std::printf("%s\n", api::EncodeJson(s, true).c_str());
    return 0;
  }
  if (output == "yaml") {
    for (size_t i = 0; i < sets.size(); ++i) std::printf("%s%s\n", i ? "---\n" : "", api::EncodeYaml(sets[i]).c_str());
    return 0;
  }
  if (controlPlane.kind != reconcilers::ControlPlaneKind::kRunning) {
    std::printf("Control plane: %s\n\n", controlPlane.message.c_str());
  }
  if (sets.empty()) {
    std::printf("No replica sets in %s\n", store.stateDir().c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "PHASE", "PRIMARY", "READY", "TIMELINE", "GENERATION"}};
  for (const auto& s : sets) {
    rows.push_back({s.metadata.name, Dash(s.status.phase), Dash(s.status.currentPrimary),
                    std::to_string(s.status.readyInstances) + "/" + std::to_string(s.spec.instances.value_or(1)),
                    std::to_string(s.status.timeline),
                    std::to_string(s.status.observedGeneration) + "/" + std::to_string(s.metadata.generation)});
  }
  std::string out = Table(rows);
  for (const auto& s : sets) {
    std::vector<std::vector<std::string>> inst = {
        {"INSTANCE", "ROLE", "STATE", "HOST:PORT", "TIMELINE", "LSN", "LAG(BYTES)", "LAG(S)", "SYNC", "MESSAGE"}};
    for (const auto& i : s.status.instances) {
      inst.push_back({i.name, Dash(i.role), Dash(i.state), i.host.empty() ? "-" : i.host + ":" + std::to_string(i.port),
                      i.timeline ? std::to_string(i.timeline) : "-", Dash(i.lsn), FormatBytes(i.lagBytes),
                      FormatSeconds(i.lagSeconds), Dash(i.syncState), i.message});
    }
    out += "\n" + Table(inst);
    for (const auto& c : s.status.conditions) {
      out += "\n" + c.type + "=" + c.status + " (" + c.reason + ")" + (c.message.empty() ? "" : ": " + c.message);
    }
    out += "\n";
    if (s.status.backup) out += "\n" + BackupLines(*s.status.backup, std::chrono::system_clock::now());
    if (!s.status.failovers.empty()) {
      out += "\nLast failovers:\n";
      std::vector<std::vector<std::string>> history = {{"  TIME", "FROM", "TO", "REASON", "UNAVAILABLE(S)", "TIMELINE"}};
      for (const auto& f : s.status.failovers) {
        history.push_back({"  " + f.time, f.from, f.to, f.reason, FormatSeconds(f.unavailableSeconds),
                           std::to_string(f.timeline)});
      }
      out += Table(history);
    }
    if (!s.status.connection.readWrite.empty()) {
      out += "\nread-write: " + s.status.connection.readWrite + "\nread-only:  " + s.status.connection.readOnly + "\n";
    }
  }
  std::fputs(out.c_str(), stdout);
  return 0;
}

int Wait(const Args& args) {
  if (args.positional.size() != 1 || !args.flags.count("--for")) {
    std::fprintf(stderr, "pgrs local wait: NAME and --for condition=TYPE[=STATUS] are required\n");
    return 2;
  }
  std::string name = args.positional[0];
  std::string forText = args.flags.at("--for");
  if (forText.rfind("condition=", 0) != 0) {
    std::fprintf(stderr, "pgrs local wait: --for must be condition=TYPE[=STATUS]\n");
    return 2;
  }
  std::string type = forText.substr(10), wantStatus = "True";
  if (auto eq = type.find('='); eq != std::string::npos) {
    wantStatus = type.substr(eq + 1);
    type = type.substr(0, eq);
  }
  auto timeout = ParseDuration(args.flags.count("--timeout") ? args.flags.at("--timeout") : "120s");
  if (!timeout) {
    std::fprintf(stderr, "pgrs local wait: --timeout must be a duration such as 120s or 2m\n");
    return 2;
  }
  local::LocalStore store(args.flags.at("--state-dir"));
  const auto start = std::chrono::steady_clock::now();
  auto deadline = start + *timeout;
  // Time for a `run` being started next to this `wait` to take the lock.
  const auto grace = std::min<std::chrono::milliseconds>(3s, *timeout);
  bool notRunning = false;  // (an std::optional here trips GCC 12's maybe-uninitialized)
  std::chrono::steady_clock::time_point notRunningSince{};
  std::string lastProgress;
  while (true) {
    auto set = store.Get(name);
    if (!set.ok()) {
      std::fprintf(stderr, "error: %s\n", set.status().message().c_str());
      return 1;
    }
    // A condition counts only once status speaks of the current spec, and
    // only while a control plane observes it.
    const auto now = std::chrono::steady_clock::now();
    const reconcilers::ControlPlaneState controlPlane = store.AssessControlPlane();
    set->status = reconcilers::StatusAsSeen(set->status, controlPlane);
    const api::Condition* c = api::FindCondition(set->status, type);
    bool current = set->status.observedGeneration >= set->metadata.generation;
    if (controlPlane.running()) {
      notRunning = false;
    } else if (!notRunning) {
      notRunning = true;
      notRunningSince = now;
    }
    const auto notRunningFor = std::chrono::duration_cast<std::chrono::milliseconds>(
        notRunning ? now - notRunningSince : std::chrono::steady_clock::duration::zero());
    switch (reconcilers::DecideWaitStep(c != nullptr && current && c->status == wantStatus, controlPlane,
                                        notRunningFor, grace)) {
      case reconcilers::WaitStep::kMet:
        std::printf("postgresreplicaset.pgrs.dev/%s condition met\n", name.c_str());
        return 0;
      case reconcilers::WaitStep::kFail:
        std::fprintf(stderr, "error: postgresreplicaset %s: condition %s=%s cannot be observed: %s\n", name.c_str(),
                     type.c_str(), wantStatus.c_str(), controlPlane.message.c_str());
        return 1;
      case reconcilers::WaitStep::kKeepWaiting:
        break;
    }
    const api::Condition* progressing = api::FindCondition(set->status, "Progressing");
    std::string progress = set->status.phase + (progressing && !progressing->message.empty() ? ": " + progressing->message : "");
    if (!progress.empty() && progress != lastProgress) {
      std::fprintf(stderr, "waiting for %s: %s\n", name.c_str(), progress.c_str());
      lastProgress = progress;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "error: timed out waiting for condition %s=%s on postgresreplicaset %s\n", type.c_str(),
                   wantStatus.c_str(), name.c_str());
      return 1;
    }
    std::this_thread::sleep_for(200ms);
  }
}

// The repository passphrase outlives the set, as its repository does.
void SayBackupKeyKept(const local::LocalStore& store, const std::string& name) {
  const std::string key = local::BackupKeyFile(store.stateDir(), name);
  if (PathExists(key)) {
    std::printf("kept the repository encryption passphrase of %s in %s: restoring its backups needs it (remove it "
                "once the repository is gone)\n",
                name.c_str(), key.c_str());
  }
}

int Delete(const Args& args) {
  if (args.positional.size() != 1) {
    std::fprintf(stderr, "pgrs local delete: NAME is required\n");
    return 2;
  }
  std::string name = args.positional[0];
  local::LocalStore store(args.flags.at("--state-dir"));
  if (auto set = store.Get(name); !set.ok()) {
    std::fprintf(stderr, "error: %s\n", set.status().message().c_str());
    return 1;
  }
  const auto agents = local::FindAgentProcesses(store.stateDir());
  const bool agentsRun =
      std::any_of(agents.begin(), agents.end(), [&](const local::FoundAgent& a) { return a.set == name; });
  if (!local::RunLock::IsHeld(store.stateDir()) && agentsRun) {
    // A `run` that crashed left them running: the next one stops them
    // (they belong to a set being deleted) and removes the set.
    Status st = store.RequestDelete(name);
    if (!st.ok()) {
      std::fprintf(stderr, "error: %s\n", st.message().c_str());
      return 1;
    }
    std::printf("postgresreplicaset.pgrs.dev/%s marked for deletion: pgrs local run is not running and its instances "
                "still run; the next pgrs local run stops them and removes the set\n",
                name.c_str());
    return 0;
  }
  if (!local::RunLock::IsHeld(store.stateDir())) {
    // No control plane and no agent of this set runs.
    Status st = store.Remove(name);
    if (!st.ok()) {
      std::fprintf(stderr, "error: %s\n", st.message().c_str());
      return 1;
    }
    std::printf("postgresreplicaset.pgrs.dev/%s deleted\n", name.c_str());
    SayBackupKeyKept(store, name);
    return 0;
  }
  Status st = store.RequestDelete(name);
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.message().c_str());
    return 1;
  }
  auto timeout = ParseDuration(args.flags.count("--timeout") ? args.flags.at("--timeout") : "120s");
  auto deadline = std::chrono::steady_clock::now() + timeout.value_or(120s);
  std::fprintf(stderr, "deleting %s: stopping its instances\n", name.c_str());
  while (PathExists(store.SetDir(name))) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "error: timed out waiting for postgresreplicaset %s to be deleted\n", name.c_str());
      return 1;
    }
    std::this_thread::sleep_for(200ms);
  }
  std::printf("postgresreplicaset.pgrs.dev/%s deleted\n", name.c_str());
  SayBackupKeyKept(store, name);
  return 0;
}

// A planned switchover is a change of spec.primary, as if applied: the
// controller moves the primary with no lost commit. Waits until it has.
int Switchover(const Args& args) {
  if (args.positional.size() != 1 || !args.flags.count("--to")) {
    std::fprintf(stderr, "pgrs local switchover: NAME and --to INSTANCE are required\n");
    return 2;
  }
  const std::string& name = args.positional[0];
  const std::string& target = args.flags.at("--to");
  local::LocalStore store(args.flags.at("--state-dir"));
  auto set = store.Get(name);
  if (!set.ok()) {
    std::fprintf(stderr, "error: %s\n", set.status().message().c_str());
    return 1;
  }
  api::PostgresReplicaSet wanted = *set;
  wanted.spec.primary = target;
  if (auto errors = api::Validate(wanted); !errors.empty()) {
    for (const auto& e : errors) std::fprintf(stderr, "error: postgresreplicaset %s: %s\n", name.c_str(), e.ToString().c_str());
    return 1;
  }
  if (set->status.currentPrimary == target && set->spec.primary == target) {
    std::printf("postgresreplicaset.pgrs.dev/%s primary is already %s\n", name.c_str(), target.c_str());
    return 0;
  }
  std::string outcome;
  auto stored = store.Apply(wanted, &outcome);
  if (!stored.ok()) {
    std::fprintf(stderr, "error: %s\n", stored.status().message().c_str());
    return 1;
  }
  auto timeout = ParseDuration(args.flags.count("--timeout") ? args.flags.at("--timeout") : "120s");
  auto deadline = std::chrono::steady_clock::now() + timeout.value_or(120s);
  std::string lastProgress;
  while (true) {
    auto now = store.Get(name);
    if (now.ok() && now->status.observedGeneration >= stored->metadata.generation &&
        now->status.currentPrimary == target && now->status.promotionReason.empty()) {
      std::printf("postgresreplicaset.pgrs.dev/%s switched over to %s\n", name.c_str(), target.c_str());
      return 0;
    }
    if (now.ok()) {
      const api::Condition* progressing = api::FindCondition(now->status, "Progressing");
      std::string progress = now->status.phase + (progressing ? ": " + progressing->message : "");
      if (progress != lastProgress) {
        std::fprintf(stderr, "switching %s to %s: %s\n", name.c_str(), target.c_str(), progress.c_str());
        lastProgress = progress;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "error: timed out waiting for the switchover of %s to %s\n", name.c_str(), target.c_str());
      return 1;
    }
    std::this_thread::sleep_for(100ms);
  }
}

// See operator/local/backup.h: the backup runs here, not in the agent.
int Backup(const Args& args) {
  if (args.positional.size() != 1) {
    std::fprintf(stderr, "pgrs local backup: NAME is required\n");
    return 2;
  }
  const std::string& name = args.positional[0];
  const std::string type = args.flags.count("--type") ? args.flags.at("--type") : "full";
  if (!agent::ValidBackupType(type)) {
    std::fprintf(stderr, "pgrs local backup: --type must be full, diff or incr\n");
    return 2;
  }
  auto timeout = ParseDuration(args.flags.count("--timeout") ? args.flags.at("--timeout") : "10m");
  if (!timeout) {
    std::fprintf(stderr, "pgrs local backup: --timeout must be a duration such as 10m\n");
    return 2;
  }
  local::LocalStore store(args.flags.at("--state-dir"));
  auto set = store.Get(name);
  if (!set.ok()) {
    std::fprintf(stderr, "error: %s\n", set.status().message().c_str());
    return 1;
  }
  local::LocalRuntime runtime(store, SelfExe());
  auto label = local::TakeBackup(runtime, *set, type, *timeout,
                                 [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  if (!label.ok()) {
    std::fprintf(stderr, "error: %s\n", label.status().message().c_str());
    return 1;
  }
  std::printf("%s\n", label->c_str());
  return 0;
}

int Psql(const Args& args) {
  if (args.positional.size() != 1) {
    std::fprintf(stderr, "pgrs local psql: NAME is required\n");
    return 2;
  }
  local::LocalStore store(args.flags.at("--state-dir"));
  auto set = store.Get(args.positional[0]);
  if (!set.ok()) {
    std::fprintf(stderr, "error: %s\n", set.status().message().c_str());
    return 1;
  }
  std::string conninfo = args.flags.count("--replica") ? set->status.connection.readOnly
                                                       : set->status.connection.readWrite;
  if (conninfo.empty()) {
    std::fprintf(stderr, "error: postgresreplicaset %s has no connection yet (is `pgrs local run` running?)\n",
                 args.positional[0].c_str());
    return 1;
  }
  std::string psql = "/usr/lib/postgresql/" + std::to_string(set->spec.postgres.version) + "/bin/psql";
  if (!PathExists(psql)) psql = "/usr/bin/psql";
  std::vector<std::string> argv = {psql, conninfo};
  argv.insert(argv.end(), args.passthrough.begin(), args.passthrough.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  ::execv(psql.c_str(), cargv.data());
  std::perror("pgrs local psql: exec psql");
  return 1;
}

}  // namespace

int RunLocalCommand(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    LocalUsage();
    return argv.empty() ? 2 : 0;
  }
  std::string verb = argv[0];
  std::vector<std::string> rest(argv.begin() + 1, argv.end());
  Args args = ParseArgs(rest, {"--state-dir", "-f", "--filename", "-o", "--output", "--for", "--timeout",
                               "--log-format", "--log-level", "--to", "--type"},
                        {"--replica"});
  if (!args.error.empty()) {
    std::fprintf(stderr, "pgrs local %s: %s\n", verb.c_str(), args.error.c_str());
    return 2;
  }
  if (args.flags.count("--filename")) args.flags["-f"] = args.flags["--filename"];
  if (args.flags.count("--output")) args.flags["-o"] = args.flags["--output"];
  if (!args.flags.count("--state-dir")) {
    std::fprintf(stderr, "pgrs local %s: --state-dir DIR is required\n", verb.c_str());
    return 2;
  }
  if (verb == "run") return Run(args);
  if (verb == "apply") return Apply(args);
  if (verb == "get") return Get(args);
  if (verb == "wait") return Wait(args);
  if (verb == "delete") return Delete(args);
  if (verb == "psql") return Psql(args);
  if (verb == "switchover") return Switchover(args);
  if (verb == "backup") return Backup(args);
  std::fprintf(stderr, "pgrs local: unknown verb %s\n", verb.c_str());
  LocalUsage();
  return 2;
}

}  // namespace pgrs::cli
