// PostgreSQL write-ahead-log positions: "0/5000060" <-> 0x5000060.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pgrs {

std::string FormatLsn(uint64_t lsn);
std::optional<uint64_t> ParseLsn(const std::string& text);

}  // namespace pgrs
