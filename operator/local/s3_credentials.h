// Local mode's S3 secrets (spec.backup.repository.s3.credentialsFile and
// caFile), read by the runtime for the executor, which hands them to the
// agents in their config. Kubernetes reads credentialsSecret and caSecret
// instead.
//
// The credentials file has the two lines
//   AWS_ACCESS_KEY_ID=AKIA...
//   AWS_SECRET_ACCESS_KEY=...
// (blank lines and lines starting with # are ignored; nothing else is
// allowed). The names are the AWS CLI's environment variables and the keys
// the Kubernetes Secret will carry, and a shell can source the file.
#pragma once

#include <string>

#include "operator/api/types.h"
#include "operator/util/status.h"

namespace pgrs::local {

struct S3Secrets {
  std::string key;        // AWS_ACCESS_KEY_ID
  std::string keySecret;  // AWS_SECRET_ACCESS_KEY
  std::string ca;         // the caFile's PEM text; "" when none is set
};

// The two keys from a credentials file's text. Errors name the line, never
// a value.
Result<S3Secrets> ParseS3Credentials(const std::string& text);

// Reads credentialsFile and caFile of `s3`, found at `field`
// (spec.backup.repository.s3, spec.bootstrap.recovery.repository.s3);
// errors name the field path and the file. Refuses credentialsSecret and
// caSecret, which only Kubernetes has.
Result<S3Secrets> ReadS3Secrets(const api::S3RepositorySpec& s3, const std::string& field);

}  // namespace pgrs::local
