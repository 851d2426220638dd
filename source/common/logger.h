#pragma once
// Process-wide logging on spdlog. Thread-safe: any thread may log at any time, including before
// the server starts (plugins may log while they are being loaded).

#include <atomic>
#include <string_view>

#include <spdlog/spdlog.h>

namespace corral {

class Logger {
public:
  // Sets the level from Envoy's names: trace, debug, info, warning|warn, error, critical, off.
  // Returns false for an unknown name.
  static bool setLevel(std::string_view name);
  static spdlog::logger& get();
};

}  // namespace corral

// CORRAL_LOG(lvl, fmt, args...): lvl is one of spdlog's trace, debug, info, warn, err, critical.
#define CORRAL_LOG(lvl, ...)                               \
  do {                                                     \
    auto& corral_logger_ = ::corral::Logger::get();        \
    if (corral_logger_.should_log(spdlog::level::lvl)) {   \
      corral_logger_.log(spdlog::level::lvl, __VA_ARGS__); \
    }                                                      \
  } while (false)
