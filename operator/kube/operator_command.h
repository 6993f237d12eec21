// `pgrs operator`: the controller inside a Kubernetes cluster.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace pgrs::kube {

struct ReplicaSetControllerOptions;

// `args` are the arguments after "operator". Returns the process exit code.
// `customize` (benchmarks only) may change the controller's options after
// the flags were read, e.g. to simulate the data plane.
int RunOperatorCommand(const std::vector<std::string>& args,
                       const std::function<void(ReplicaSetControllerOptions&)>& customize = nullptr);

}  // namespace pgrs::kube
