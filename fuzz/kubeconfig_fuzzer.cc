// The kubeconfig reader (operator/kube/config.cc) on arbitrary bytes: it
// answers a config or an Invalid error naming the kubeconfig, never throws.
// Relative file paths resolve under a directory that does not exist, so the
// run reads no file of the machine's unless the input names it absolutely.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/check.h"
#include "operator/kube/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const char* context : {"", "fuzz"}) {
    auto config = pgrs::kube::ParseKubeconfig(text, "/nonexistent-pgrs-fuzz", context);
    if (!config.ok()) {
      PGRS_FUZZ_CHECK(config.status().code() == pgrs::StatusCode::kInvalid,
                      "not Invalid: " + config.status().message());
      PGRS_FUZZ_CHECK(config.status().message().rfind("kubeconfig", 0) == 0,
                      "an error that does not name the kubeconfig: " + config.status().message());
      continue;
    }
    PGRS_FUZZ_CHECK(!config->server.empty() && config->server.back() != '/', "server: " + config->server);
    PGRS_FUZZ_CHECK(!config->namespace_.empty(), "an empty namespace");
    PGRS_FUZZ_CHECK(config->clientCertData.empty() == config->clientKeyData.empty(),
                    "a client certificate without its key");
  }
  return 0;
}
