#pragma once
// Per-stream facts gathered for access logs, stats and filters (Envoy's StreamInfo).
// Owned by one stream on one worker thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

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
  std::string upstream_local_address;
  uint32_t attempt_count = 0;  // upstream attempts made by the router
  // Envoy's dynamic metadata: filter name -> serialised google.protobuf.Struct.
  std::map<std::string, std::string> dynamic_metadata;
  // String filter state (Envoy's StringAccessor objects), by key.
  std::map<std::string, std::string> filter_state;
  // A filter asked the router for this upstream host ("ip:port"); strict: no fallback.
  std::optional<std::pair<std::string, bool>> upstream_override_host;
  // A filter asked to close the downstream connection after this response.
  bool drain_connection_upon_completion = false;
  // Times a filter cleared the route cache (a sandboxed filter's clear is replayed in the proxy).
  uint32_t route_cache_clears = 0;

  void addResponseFlag(const char* flag) {
    if (!response_flags.empty()) {
      response_flags += ',';
    }
    response_flags += flag;
  }
};

}  // namespace corral::http
