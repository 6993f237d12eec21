// Logging through spdlog. Human-readable lines on a terminal, JSON lines
// otherwise (a cluster's log collector). Messages follow the key=value habit:
//   PGRS_LOG_INFO("promoted instance set={} instance={} lsn={}", ...)
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace pgrs {

enum class LogFormat { kAuto, kText, kJson };

// Installs the default logger. `component` names the process ("operator",
// "agent demo-2", "local"). `level` is an spdlog level name (debug, info,
// warn, error). Logs go to stderr, or to `file` when non-empty.
void InitLogging(const std::string& component, LogFormat format, const std::string& level,
                 const std::string& file = "");

// Parses "text" | "json" | "auto".
bool ParseLogFormat(const std::string& text, LogFormat* format);

// Escapes a string for a JSON string literal (without the quotes).
std::string JsonEscape(const std::string& text);

}  // namespace pgrs
