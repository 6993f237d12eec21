#include "operator/kube/operator_command.h"

#include <cstdio>

namespace pgrs::kube {

int RunOperatorCommand(const std::vector<std::string>& args) {
  (void)args;
  std::fprintf(stderr, "pgrs operator: the Kubernetes mode is not built yet\n");
  return 2;
}

}  // namespace pgrs::kube
