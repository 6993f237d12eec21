// The agent protocol's decoders (operator/agent/protocol.cc) on arbitrary
// bytes: each answers a value or an Invalid error, and what one accepts
// survives its encoder: encoded, decoded again and encoded once more, the
// text is the same (and the config's hash with it).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/check.h"
#include "operator/agent/protocol.h"

namespace {

template <typename T, typename Decode, typename Encode>
void CheckCodec(const char* what, const std::string& text, Decode decode, Encode encode) {
  pgrs::Result<T> decoded = decode(text);
  if (!decoded.ok()) {
    PGRS_FUZZ_CHECK(decoded.status().code() == pgrs::StatusCode::kInvalid,
                    std::string(what) + ": not Invalid: " + decoded.status().message());
    return;
  }
  const std::string encoded = encode(*decoded);
  pgrs::Result<T> again = decode(encoded);
  PGRS_FUZZ_CHECK(again.ok(), std::string(what) + ": its own encoding does not decode: " + again.status().message() +
                                  "\n" + encoded);
  PGRS_FUZZ_CHECK(encode(*again) == encoded, std::string(what) + ": the round trip changed it:\n" + encoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pgrs::agent;
  const std::string text(reinterpret_cast<const char*>(data), size);
  CheckCodec<AgentConfig>("AgentConfig", text, DecodeAgentConfig, EncodeAgentConfig);
  CheckCodec<AgentStatus>("AgentStatus", text, DecodeAgentStatus, EncodeAgentStatus);
  CheckCodec<BackupRequest>("BackupRequest", text, DecodeBackupRequest, EncodeBackupRequest);
  CheckCodec<BackupJob>("BackupJob", text, DecodeBackupJob, EncodeBackupJob);

  auto status = DecodeAgentStatus(text);
  if (status.ok()) {
    auto again = DecodeAgentStatus(EncodeAgentStatus(*status));
    PGRS_FUZZ_CHECK(again.ok(), "AgentStatus");
    // Only a checked repository is encoded (checkedMs != 0).
    if (status->repository.checkedMs != 0) {
      PGRS_FUZZ_CHECK(again->repository == status->repository, "AgentStatus: the repository changed");
    }
  }
  auto job = DecodeBackupJob(text);
  if (job.ok()) {
    auto again = DecodeBackupJob(EncodeBackupJob(*job));
    PGRS_FUZZ_CHECK(again.ok() && *again == *job, "BackupJob: the round trip changed the job");
  }
  auto request = DecodeBackupRequest(text);
  if (request.ok()) {
    PGRS_FUZZ_CHECK(ValidBackupType(request->type) && !request->id.empty(), "BackupRequest accepted: " + text);
  }
  auto config = DecodeAgentConfig(text);
  if (config.ok()) {
    auto again = DecodeAgentConfig(EncodeAgentConfig(*config));
    PGRS_FUZZ_CHECK(again.ok() && ConfigHash(*again) == ConfigHash(*config), "AgentConfig: the hash changed");
  }
  return 0;
}
