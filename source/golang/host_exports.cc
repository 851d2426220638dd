// The envoyGo* host functions a Go plugin calls, compiled against the SDK's own api.h so that a
// signature drift fails the build. Linked into executables with corral_export_go_abi() and
// exported dynamically: the .so binds them at first call, from any thread, and already during
// dlopen (the SDK's package init asks for the log level and may log).
//
// So far: logging. The per-request and config functions come with the Golang filter.

#include <string_view>

#include "api.h"
#include "source/common/logger.h"

namespace {
// The SDK's api.LogType values (Trace 0 ... Critical 5) are spdlog's level numbers.
spdlog::level::level_enum toSpdlog(uint32_t level) {
  return level <= static_cast<uint32_t>(spdlog::level::critical)
             ? static_cast<spdlog::level::level_enum>(level)
             : spdlog::level::critical;
}
}  // namespace

extern "C" {

void envoyGoFilterLog(uint32_t level, void* message_data, int message_len) {
  if (message_data == nullptr || message_len < 0) {
    return;  // untrusted input: a plugin bug, not a host crash
  }
  auto& logger = corral::Logger::get();
  const auto lvl = toSpdlog(level);
  if (logger.should_log(lvl)) {
    logger.log(
        lvl, "[golang] {}",
        std::string_view(static_cast<const char*>(message_data), static_cast<size_t>(message_len)));
  }
}

uint32_t envoyGoFilterLogLevel() {
  return static_cast<uint32_t>(corral::Logger::get().level());
}

}  // extern "C"
