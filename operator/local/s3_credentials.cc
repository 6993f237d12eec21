#include "operator/local/s3_credentials.h"

#include "operator/util/files.h"

namespace pgrs::local {

namespace {

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

}  // namespace

Result<S3Secrets> ParseS3Credentials(const std::string& text) {
  S3Secrets out;
  size_t start = 0;
  for (int number = 1; start <= text.size(); ++number) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = Trim(text.substr(start, end - start));
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    const std::string name = eq == std::string::npos ? line : Trim(line.substr(0, eq));
    const std::string value = eq == std::string::npos ? "" : Trim(line.substr(eq + 1));
    std::string* slot = name == "AWS_ACCESS_KEY_ID"       ? &out.key
                        : name == "AWS_SECRET_ACCESS_KEY" ? &out.keySecret
                                                          : nullptr;
    const std::string where = "line " + std::to_string(number) + ": ";
    if (slot == nullptr || eq == std::string::npos) {
      return Status::Invalid(where + "expected AWS_ACCESS_KEY_ID=... or AWS_SECRET_ACCESS_KEY=...");
    }
    if (!slot->empty()) return Status::Invalid(where + name + " is set twice");
    if (value.empty()) return Status::Invalid(where + name + " is empty");
    *slot = value;
  }
  if (out.key.empty()) return Status::Invalid("AWS_ACCESS_KEY_ID is missing");
  if (out.keySecret.empty()) return Status::Invalid("AWS_SECRET_ACCESS_KEY is missing");
  return out;
}

Result<S3Secrets> ReadS3Secrets(const api::S3RepositorySpec& s3, const std::string& field) {
  if (!s3.credentialsSecret.empty()) {
    return Status::Invalid(field + ".credentialsSecret: Kubernetes only; in local mode set credentialsFile");
  }
  if (!s3.caSecret.empty()) return Status::Invalid(field + ".caSecret: Kubernetes only; in local mode set caFile");
  auto text = ReadFile(s3.credentialsFile);
  if (!text.ok()) return text.status().WithContext(field + ".credentialsFile " + s3.credentialsFile);
  auto secrets = ParseS3Credentials(*text);
  if (!secrets.ok()) return secrets.status().WithContext(field + ".credentialsFile " + s3.credentialsFile);
  if (!s3.caFile.empty()) {
    auto ca = ReadFile(s3.caFile);
    if (!ca.ok()) return ca.status().WithContext(field + ".caFile " + s3.caFile);
    if (ca->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return Status::Invalid(field + ".caFile " + s3.caFile + ": not a PEM certificate bundle");
    }
    secrets->ca = *ca;
  }
  return secrets;
}

}  // namespace pgrs::local
