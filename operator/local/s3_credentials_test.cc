#include "operator/local/s3_credentials.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "operator/util/files.h"

namespace pgrs::local {
namespace {

TEST(ParseS3Credentials, Table) {
  struct Row {
    const char* text;
    const char* error;  // "" = parses to AKIA / secret
  };
  const Row rows[] = {
      {"AWS_ACCESS_KEY_ID=AKIA\nAWS_SECRET_ACCESS_KEY=secret\n", ""},
      {"# keys for pgrs\n\n  AWS_SECRET_ACCESS_KEY = secret \r\nAWS_ACCESS_KEY_ID=AKIA", ""},
      {"AWS_ACCESS_KEY_ID=AKIA\n", "AWS_SECRET_ACCESS_KEY is missing"},
      {"AWS_SECRET_ACCESS_KEY=secret\n", "AWS_ACCESS_KEY_ID is missing"},
      {"AWS_ACCESS_KEY_ID=AKIA\nAWS_SECRET_ACCESS_KEY=\n", "line 2: AWS_SECRET_ACCESS_KEY is empty"},
      {"AWS_ACCESS_KEY_ID=AKIA\nAWS_ACCESS_KEY_ID=B\n", "line 2: AWS_ACCESS_KEY_ID is set twice"},
      {"[default]\naws_access_key_id=AKIA\n", "line 1: expected AWS_ACCESS_KEY_ID=... or AWS_SECRET_ACCESS_KEY=..."},
      {"AWS_ACCESS_KEY_ID=AKIA\nsecret\n", "line 2: expected AWS_ACCESS_KEY_ID=... or AWS_SECRET_ACCESS_KEY=..."},
  };
  for (const Row& row : rows) {
    auto parsed = ParseS3Credentials(row.text);
    if (std::string(row.error).empty()) {
      ASSERT_TRUE(parsed.ok()) << row.text << ": " << parsed.status().ToString();
      EXPECT_EQ(parsed->key, "AKIA");
      EXPECT_EQ(parsed->keySecret, "secret");
    } else {
      ASSERT_FALSE(parsed.ok()) << row.text;
      EXPECT_EQ(parsed.status().message(), row.error) << row.text;
      // An error never shows a value.
      EXPECT_EQ(parsed.status().message().find("secret"), std::string::npos);
    }
  }
}

TEST(ReadS3Secrets, ErrorsNameTheFieldAndTheFile) {
  char dir[] = "/tmp/pgrs-s3-credentials-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string creds = std::string(dir) + "/creds";
  const std::string ca = std::string(dir) + "/ca.pem";
  ASSERT_TRUE(WriteFileAtomic(creds, "AWS_ACCESS_KEY_ID=AKIA\nAWS_SECRET_ACCESS_KEY=secret\n", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0644).ok());
  api::S3RepositorySpec s3;
  s3.credentialsFile = creds;
  s3.caFile = ca;
  auto secrets = ReadS3Secrets(s3, "spec.backup.repository.s3");
  ASSERT_TRUE(secrets.ok()) << secrets.status().ToString();
  EXPECT_EQ(secrets->key, "AKIA");
  EXPECT_EQ(secrets->keySecret, "secret");
  EXPECT_EQ(secrets->ca.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);

  s3.credentialsFile = std::string(dir) + "/missing";
  EXPECT_EQ(ReadS3Secrets(s3, "spec.backup.repository.s3").status().message().rfind(
                "spec.backup.repository.s3.credentialsFile " + s3.credentialsFile + ": ", 0),
            0u)
      << ReadS3Secrets(s3, "spec.backup.repository.s3").status().message();
  s3.credentialsFile = creds;
  s3.caFile = creds;  // not PEM
  EXPECT_EQ(ReadS3Secrets(s3, "spec.backup.repository.s3").status().message(),
            "spec.backup.repository.s3.caFile " + creds + ": not a PEM certificate bundle");
  s3.caFile = "";
  s3.credentialsSecret = "keys";
  EXPECT_EQ(ReadS3Secrets(s3, "spec.backup.repository.s3").status().message(),
            "spec.backup.repository.s3.credentialsSecret: Kubernetes only; in local mode set credentialsFile");
  s3.credentialsSecret = "";
  s3.credentialsFile = std::string(dir) + "/missing";
  EXPECT_EQ(ReadS3Secrets(s3, "spec.bootstrap.recovery.repository.s3")
                .status()
                .message()
                .rfind("spec.bootstrap.recovery.repository.s3.credentialsFile " + s3.credentialsFile + ": ", 0),
            0u);
  ASSERT_TRUE(RemoveTree(dir).ok());
}

}  // namespace
}  // namespace pgrs::local
