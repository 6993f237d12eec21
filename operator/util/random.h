// Secrets: passwords and tokens from OpenSSL's CSPRNG.
#pragma once

#include <string>

namespace pgrs {

// `bytes` random bytes as lowercase hex (2*bytes characters). Aborts if the
// CSPRNG fails: a predictable secret is worse than no process.
std::string RandomHex(size_t bytes);

}  // namespace pgrs
