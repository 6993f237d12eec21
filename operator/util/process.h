// Child processes: the agents that `pgrs local run` starts, the postmaster an
// agent supervises, and the PostgreSQL tools (initdb, pg_basebackup,
// pg_rewind) it runs. Everything that forks goes through here, so that
// privileges are dropped, output is captured and no child outlives us.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "operator/util/status.h"

namespace pgrs {

struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  std::string home;
};

// The OS user PostgreSQL runs as: "postgres" when we are root (PostgreSQL
// refuses root), else ourselves.
Result<UserIds> LookupUser(const std::string& name);
Result<UserIds> PostgresUser();
bool RunningAsRoot();

struct ProcessSpec {
  std::vector<std::string> argv;            // argv[0] is the program path
  std::vector<std::string> env;             // "K=V", added to (or replacing in) our environment
  std::string workingDir;                   // empty = inherit
  std::optional<UserIds> runAs;             // drop to this user (we must be root)
  std::string outputFile;                   // append stdout+stderr here; empty = inherit
  std::string stdinFile;                    // read stdin from here; empty = /dev/null
  bool newProcessGroup = true;              // keep terminal signals away from the child
  int deathSignal = 15;                     // sent to the child if its parent dies (0 = none)
};

// Starts the process and returns its pid. If `outputPipe` is given, the
// child's stdout+stderr go to a pipe whose read end is returned there.
Result<pid_t> SpawnProcess(const ProcessSpec& spec, int* outputPipe = nullptr);

struct CommandResult {
  int exitCode = -1;  // -1 when killed by a signal
  int termSignal = 0;
  std::string output;  // last ~64 KiB of stdout+stderr
  bool ok() const { return exitCode == 0; }
};

// Runs a command to completion, capturing its output. `onOutput` sees each
// line (split at \n and \r, so progress bars arrive as lines). After
// `timeout` the process group is killed and Unavailable returned; so it is
// within a second of `*cancelled` becoming true (a job the agent stops).
Result<CommandResult> RunCommand(const ProcessSpec& spec, std::chrono::milliseconds timeout,
                                 const std::function<void(const std::string&)>& onOutput = {},
                                 const std::atomic<bool>* cancelled = nullptr);

// Non-blocking reap of our child: the raw wait status if it has exited.
std::optional<int> TryReap(pid_t pid);
// Sends `signal`, waits up to `grace` for the child to exit, then SIGKILLs
// it and reaps it. Returns true if it exited within the grace period.
bool StopChild(pid_t pid, int signal, std::chrono::milliseconds grace);
// For processes that are not our children: alive (or zombie) per kill(pid, 0).
bool ProcessExists(pid_t pid);
// For processes that may not be our children (an agent adopted from a
// `pgrs local run` that crashed): the start time in /proc/PID/stat (clock
// ticks since boot), which tells a process from a later one given the same
// pid; nullopt when none runs under that pid (or it is a zombie).
std::optional<uint64_t> ProcessStartTime(pid_t pid);
// The pids in /proc and a process's argv (empty when it is gone).
std::vector<pid_t> ListProcessIds();
std::vector<std::string> ProcessArguments(pid_t pid);
// Sends `signal` to the process that started at `startTime`, waits up to
// `grace` for it to end, then SIGKILLs it. Reaps it if it is our child.
// Returns true if it ended within the grace period.
bool StopProcess(pid_t pid, uint64_t startTime, int signal, std::chrono::milliseconds grace);
// A wait status as words: "exited with code 1", "killed by signal 9".
std::string DescribeWaitStatus(int status);

}  // namespace pgrs
