// pgrs: one binary, three roles.
//   pgrs local ...     the embedded control plane on this machine
//   pgrs instance ...  the agent beside one PostgreSQL
//   pgrs operator ...  the controller inside Kubernetes
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "operator/cli/commands.h"
#include "operator/kube/operator_command.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: pgrs COMMAND [ARGS]\n"
               "\n"
               "  local run|apply|get|wait|delete|psql   a replica set on this machine (pgrs local --help)\n"
               "  instance                               the instance agent (started by pgrs)\n"
               "  operator                               the Kubernetes operator\n"
               "  version                                print the version\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage();
    return 2;
  }
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "local") return pgrs::cli::RunLocalCommand(args);
  if (command == "instance") return pgrs::cli::RunInstanceCommand(args);
  if (command == "operator") return pgrs::kube::RunOperatorCommand(args);
  if (command == "version" || command == "--version") {
    std::printf("pgrs %s\n", pgrs::cli::kVersion);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    Usage();
    return 0;
  }
  std::fprintf(stderr, "pgrs: unknown command %s\n", command.c_str());
  Usage();
  return 2;
}
