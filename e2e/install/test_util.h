// Helpers shared by the install tests: where the sources are, reading them,
// running a shell command.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "operator/util/files.h"
#include "operator/util/process.h"

namespace pgrs::install_test {

// The repository root: $PGRS_SOURCE_DIR (set by pgrs_test) or the source
// tree this test was configured from.
inline std::string SourceDir() {
  const char* dir = std::getenv("PGRS_SOURCE_DIR");
  return dir != nullptr ? dir : PGRS_SOURCE_DIR_DEFAULT;
}

// A file of the repository, by its path relative to the root. Fails the
// test (and returns "") when it cannot be read.
inline std::string ReadSource(const std::string& relative) {
  Result<std::string> text = ReadFile(SourceDir() + "/" + relative);
  EXPECT_TRUE(text.ok()) << relative << ": " << text.status().ToString();
  return text.ok() ? *text : std::string();
}

// Runs `/bin/sh -c command` in the repository root; stdout and stderr
// together in `output`.
inline CommandResult RunShell(const std::string& command) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", command};
  spec.workingDir = SourceDir();
  Result<CommandResult> result = RunCommand(spec, std::chrono::seconds(60));
  if (!result.ok()) {
    CommandResult failed;
    failed.output = result.status().ToString();
    return failed;
  }
  return *result;
}

}  // namespace pgrs::install_test
