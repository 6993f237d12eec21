#include "operator/agent/agent.h"
#include "operator/cli/commands.h"

namespace pgrs::cli {

int RunInstanceCommand(const std::vector<std::string>& args) { return agent::RunAgentMain(args); }

}  // namespace pgrs::cli
