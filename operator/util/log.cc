#include "operator/util/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace pgrs {
namespace {

// Renders one record as a JSON object per line. spdlog's pattern language
// cannot escape the message, so this is a formatter of its own.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string component) : component_(std::move(component)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto time = std::chrono::system_clock::to_time_t(msg.time);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&time, &tm);
    char stamp[64];
    std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
    auto level = spdlog::level::to_string_view(msg.level);
    std::string line = "{\"ts\":\"";
    line += stamp;
    line += "\",\"level\":\"";
    line.append(level.data(), level.size());
    line += "\",\"component\":\"" + JsonEscape(component_) + "\",\"msg\":\"";
    line += JsonEscape(std::string(msg.payload.data(), msg.payload.size()));
    line += "\"}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(component_); }

 private:
  std::string component_;
};

}  // namespace

std::string JsonEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

bool ParseLogFormat(const std::string& text, LogFormat* format) {
  if (text == "text") *format = LogFormat::kText;
  else if (text == "json") *format = LogFormat::kJson;
  else if (text == "auto" || text.empty()) *format = LogFormat::kAuto;
  else return false;
  return true;
}

void InitLogging(const std::string& component, LogFormat format, const std::string& level,
                 const std::string& file) {
  spdlog::sink_ptr sink;
  bool terminal = false;
  if (file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    terminal = isatty(STDERR_FILENO) == 1;
  } else {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file);
  }
  bool json = format == LogFormat::kJson || (format == LogFormat::kAuto && !terminal && file.empty());
  auto logger = std::make_shared<spdlog::logger>(component, sink);
  if (json) {
    logger->set_formatter(std::make_unique<JsonFormatter>(component));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(level.empty() ? "info" : level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

}  // namespace pgrs
