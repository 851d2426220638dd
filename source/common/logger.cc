#include "source/common/logger.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace corral {

spdlog::logger& Logger::get() {
  // Logs go to stderr so that a stdout access log stays machine-readable.
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_logger_mt("corral");
    l->set_pattern("[%Y-%m-%d %H:%M:%S.%e][%t][%l] %v");
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *logger;
}

bool Logger::setLevel(std::string_view name) {
  spdlog::level::level_enum level;
  if (name == "trace") {
    level = spdlog::level::trace;
  } else if (name == "debug") {
    level = spdlog::level::debug;
  } else if (name == "info") {
    level = spdlog::level::info;
  } else if (name == "warning" || name == "warn") {
    level = spdlog::level::warn;
  } else if (name == "error") {
    level = spdlog::level::err;
  } else if (name == "critical") {
    level = spdlog::level::critical;
  } else if (name == "off") {
    level = spdlog::level::off;
  } else {
    return false;
  }
  get().set_level(level);
  return true;
}

}  // namespace corral
