#pragma once
// The parts of stream messages that both sides encode the same way (protocol.h has the list):
// the stream-info snapshot the proxy sends with events, and the info update the sandbox sends
// when the plugin changed what the proxy keeps for the stream (metadata, filter state, the
// upstream override host, drain, route cache).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "source/http/stream_info.h"
#include "source/sandbox/wire.h"

namespace corral::sandbox {

// What the proxy knows of the stream. `with_state`: also the dynamic metadata and filter state
// (sent once, at the start: afterwards the sandbox's copy is the one the plugin changes).
void writeInfo(WireWriter& w, const http::StreamInfo& info, bool with_state);
void readInfo(WireReader& r, http::StreamInfo& info, bool with_state);

// What the plugin may change in the stream info, as the sandbox last reported it.
struct InfoState {
  uint32_t route_cache_clears = 0;
  bool drain = false;
  std::optional<std::pair<std::string, bool>> override_host;
  std::map<std::string, std::string> dynamic_metadata;
  std::map<std::string, std::string> filter_state;

  static InfoState of(const http::StreamInfo& info);
  // Whether `info` still says this (compared in place: no copy when nothing changed, the usual
  // case on every action).
  bool sameAs(const http::StreamInfo& info) const {
    return route_cache_clears == info.route_cache_clears &&
           drain == info.drain_connection_upon_completion &&
           override_host == info.upstream_override_host &&
           dynamic_metadata == info.dynamic_metadata && filter_state == info.filter_state;
  }
  bool operator==(const InfoState& o) const = default;
};
void writeInfoState(WireWriter& w, const InfoState& s);
void readInfoState(WireReader& r, InfoState& s);

}  // namespace corral::sandbox
