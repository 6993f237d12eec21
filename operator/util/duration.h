// Durations on command lines: "500ms", "15s", "1.5s", "2m", "1h", or a bare
// number of seconds ("90").
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace pgrs {

// Empty for text that is no duration, or a negative one.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace pgrs
