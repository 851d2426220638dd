#pragma once
// Per-stream facts gathered for access logs, stats and filters (Envoy's StreamInfo).
// Owned by one stream on one worker thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace corral::http {

struct StreamInfo {
  std::chrono::system_clock::time_point start_time;
  std::chrono::steady_clock::time_point start_steady;
  std::optional<uint32_t> response_code;
  std::string response_code_details;  // "via_upstream", "route_not_found", ...
  std::string response_flags;         // Envoy's short flags: NR, UF, UT, UO, URX, DC, LR, ...
  uint64_t bytes_received = 0;        // request body bytes
  uint64_t bytes_sent = 0;            // response body bytes
  std::string upstream_host;          // "ip:port" of the upstream endpoint, if any
  std::string upstream_cluster;
  std::string route_name;
  std::string downstream_remote_address;
  std::string downstream_local_address;
  uint32_t protocol_minor = 1;  // HTTP/1.<minor>

  void addResponseFlag(const char* flag) {
    if (!response_flags.empty()) {
      response_flags += ',';
    }
    response_flags += flag;
  }
};

}  // namespace corral::http
