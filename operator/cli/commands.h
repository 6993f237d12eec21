// The command-line verbs of pgrs. Each returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace pgrs::cli {

inline constexpr char kVersion[] = "0.1.0";

int RunLocalCommand(const std::vector<std::string>& args);
int RunInstanceCommand(const std::vector<std::string>& args);

}  // namespace pgrs::cli
