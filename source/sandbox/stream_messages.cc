#include "source/sandbox/stream_messages.h"

#include <chrono>

namespace corral::sandbox {
namespace {

constexpr uint32_t kMaxMapEntries = 4096;

void writeMap(WireWriter& w, const std::map<std::string, std::string>& m) {
  w.u32(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    w.bytes(k);
    w.bytes(v);
  }
}

void readMap(WireReader& r, std::map<std::string, std::string>& m) {
  const uint32_t n = r.u32();
  if (n > kMaxMapEntries) {
    r.bytes();  // fails the reader: a count this large cannot be honest
    return;
  }
  m.clear();
  for (uint32_t i = 0; r.ok() && i < n; ++i) {
    std::string k(r.bytes());
    std::string v(r.bytes());
    m[std::move(k)] = std::move(v);
  }
}

}  // namespace

void writeInfo(WireWriter& w, const http::StreamInfo& info, bool with_state) {
  w.u32(info.response_code.value_or(0));
  w.bytes(info.response_code_details);
  w.bytes(info.response_flags);
  w.u64(info.bytes_received);
  w.u64(info.bytes_sent);
  w.bytes(info.upstream_host);
  w.bytes(info.upstream_cluster);
  w.bytes(info.route_name);
  w.bytes(info.downstream_remote_address);
  w.bytes(info.downstream_local_address);
  w.u32(info.protocol_minor);
  w.bytes(info.upstream_local_address);
  w.u32(info.attempt_count);
  w.i64(std::chrono::duration_cast<std::chrono::nanoseconds>(info.start_time.time_since_epoch())
            .count());
  if (with_state) {
    writeMap(w, info.dynamic_metadata);
    writeMap(w, info.filter_state);
  }
}

void readInfo(WireReader& r, http::StreamInfo& info, bool with_state) {
  const uint32_t code = r.u32();
  info.response_code = code == 0 ? std::nullopt : std::optional<uint32_t>(code);
  info.response_code_details = r.bytes();
  info.response_flags = r.bytes();
  info.bytes_received = r.u64();
  info.bytes_sent = r.u64();
  info.upstream_host = r.bytes();
  info.upstream_cluster = r.bytes();
  info.route_name = r.bytes();
  info.downstream_remote_address = r.bytes();
  info.downstream_local_address = r.bytes();
  info.protocol_minor = r.u32();
  info.upstream_local_address = r.bytes();
  info.attempt_count = r.u32();
  info.start_time = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(r.i64())));
  if (with_state) {
    readMap(r, info.dynamic_metadata);
    readMap(r, info.filter_state);
  }
}

InfoState InfoState::of(const http::StreamInfo& info) {
  InfoState s;
  s.route_cache_clears = info.route_cache_clears;
  s.drain = info.drain_connection_upon_completion;
  s.override_host = info.upstream_override_host;
  s.dynamic_metadata = info.dynamic_metadata;
  s.filter_state = info.filter_state;
  return s;
}

void writeInfoState(WireWriter& w, const InfoState& s) {
  w.u32(s.route_cache_clears);
  w.u8(s.drain ? 1 : 0);
  w.u8(s.override_host ? 1 : 0);
  if (s.override_host) {
    w.bytes(s.override_host->first);
    w.u8(s.override_host->second ? 1 : 0);
  }
  writeMap(w, s.dynamic_metadata);
  writeMap(w, s.filter_state);
}

void readInfoState(WireReader& r, InfoState& s) {
  s.route_cache_clears = r.u32();
  s.drain = r.boolean();
  if (r.boolean()) {
    std::string host(r.bytes());
    const bool strict = r.boolean();
    s.override_host = std::make_pair(std::move(host), strict);
  } else {
    s.override_host.reset();
  }
  readMap(r, s.dynamic_metadata);
  readMap(r, s.filter_state);
}

}  // namespace corral::sandbox
