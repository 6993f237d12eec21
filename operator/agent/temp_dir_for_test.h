// For the agent's unit tests: a fresh directory under /tmp, removed with
// everything in it when the test ends.
#pragma once

#include <stdlib.h>

#include <string>

#include "operator/util/files.h"

namespace pgrs::agent {

class TempDirForTest {
 public:
  explicit TempDirForTest(const std::string& prefix) {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDirForTest() {
    if (!path_.empty()) (void)RemoveTree(path_);
  }
  TempDirForTest(const TempDirForTest&) = delete;
  TempDirForTest& operator=(const TempDirForTest&) = delete;

  // Empty when the directory could not be made.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pgrs::agent
