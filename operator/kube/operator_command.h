// `pgrs operator`: the controller inside a Kubernetes cluster.
#pragma once

#include <string>
#include <vector>

namespace pgrs::kube {

// `args` are the arguments after "operator". Returns the process exit code.
int RunOperatorCommand(const std::vector<std::string>& args);

}  // namespace pgrs::kube
