// pgrs-test-kubelet: the process kubelet as a program (see README.md).
//
//   pgrs-test-kubelet --root DIR [--kubeconfig PATH] [--node-name N] [--namespace NS]
//                     [--map-command FROM=TO]... [--map-uid FROM=TO]... [--map-gid FROM=TO]...
//                     [--image-user UID] [--ip-base 127.0.10.1] [--pod-token FILE]
//                     [--max-grace 10s] [--token-expiration 3607s] [--log-level info]
//                     [--log-format auto|text|json]
//
// Runs until SIGTERM or SIGINT, then stops every Pod's processes (the Pod
// objects stay, as when a node goes down).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "e2e/kubelet/kubelet.h"
#include "operator/kube/config.h"
#include "operator/util/log.h"

namespace {

constexpr char kUsage[] =
    "usage: pgrs-test-kubelet --root DIR [--kubeconfig PATH] [--node-name NAME] [--namespace NS]\n"
    "                         [--map-command FROM=TO]... [--map-uid FROM=TO]... [--map-gid FROM=TO]...\n"
    "                         [--image-user UID] [--ip-base 127.0.10.1] [--pod-token FILE]\n"
    "                         [--max-grace 10s] [--token-expiration 3607s] [--log-level info]\n"
    "                         [--log-format auto|text|json]\n";

// "10s", "500ms", "2m" or plain seconds.
bool ParseDuration(const std::string& text, std::chrono::milliseconds* out) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || value < 0) return false;
  std::string unit(end);
  double ms = unit == "ms" ? value : unit == "s" || unit.empty() ? value * 1000 : unit == "m" ? value * 60000 : -1;
  if (ms < 0) return false;
  *out = std::chrono::milliseconds(static_cast<int64_t>(ms));
  return true;
}

// "999=101" -> {999, 101}.
bool ParseIdMapping(const std::string& text, unsigned* from, unsigned* to) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) return false;
  char* end = nullptr;
  unsigned long a = std::strtoul(text.c_str(), &end, 10);
  if (end != text.c_str() + eq) return false;
  unsigned long b = std::strtoul(text.c_str() + eq + 1, &end, 10);
  if (*end != '\0' || a > 0xfffffffeUL || b > 0xfffffffeUL) return false;
  *from = static_cast<unsigned>(a);
  *to = static_cast<unsigned>(b);
  return true;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "pgrs-test-kubelet: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  pgrs::e2e::KubeletOptions options;
  std::string kubeconfig, logLevel = "info", logFormat = "auto";
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Fail(flag + " needs a value\n" + kUsage);
    }
    if (flag == "--kubeconfig") kubeconfig = value;
    else if (flag == "--node-name") options.nodeName = value;
    else if (flag == "--namespace") options.namespace_ = value;
    else if (flag == "--root") options.root = value;
    else if (flag == "--ip-base") options.ipBase = value;
    else if (flag == "--pod-token") options.podTokenFile = value;
    else if (flag == "--log-level") logLevel = value;
    else if (flag == "--log-format") logFormat = value;
    else if (flag == "--map-command") {
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) return Fail("--map-command " + value + ": want FROM=TO");
      options.commandMap[value.substr(0, eq)] = value.substr(eq + 1);
    } else if (flag == "--map-uid" || flag == "--map-gid") {
      unsigned from, to;
      if (!ParseIdMapping(value, &from, &to)) return Fail(flag + " " + value + ": want FROM=TO, numeric ids");
      if (flag == "--map-uid") options.uidMap[from] = to;
      else options.gidMap[from] = to;
    } else if (flag == "--image-user") {
      unsigned uid, unused;
      if (!ParseIdMapping(value + "=0", &uid, &unused)) return Fail("--image-user " + value + ": want a numeric uid");
      options.imageUser = uid;
    } else if (flag == "--max-grace") {
      if (!ParseDuration(value, &options.maxGrace)) return Fail("--max-grace " + value + ": want a duration like 10s");
    } else if (flag == "--token-expiration") {
      std::chrono::milliseconds expiration{0};
      if (!ParseDuration(value, &expiration) || expiration < std::chrono::seconds(1)) {
        return Fail("--token-expiration " + value + ": want a duration of at least 1s, like 3607s");
      }
      options.tokenExpiration = std::chrono::duration_cast<std::chrono::seconds>(expiration);
    } else {
      return Fail("unknown flag " + flag + "\n" + kUsage);
    }
  }
  if (options.root.empty()) return Fail(std::string("--root is required\n") + kUsage);
  pgrs::LogFormat format;
  if (!pgrs::ParseLogFormat(logFormat, &format)) return Fail("--log-format " + logFormat + ": want auto, text or json");
  pgrs::InitLogging("kubelet " + options.nodeName, format, logLevel);

  auto config = pgrs::kube::ResolveConfig(kubeconfig);
  if (!config.ok()) return Fail(config.status().ToString());
  options.config = *config;

  // Signals are taken by sigwait only: blocked before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  pgrs::e2e::ProcessKubelet kubelet(options);
  if (auto s = kubelet.Start(); !s.ok()) {
    std::fprintf(stderr, "pgrs-test-kubelet: %s\n", s.ToString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("kubelet stopping signal={}", sig);
  kubelet.Stop();
  return 0;
}
