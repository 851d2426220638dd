#pragma once
// Message types on the sandbox channels (channel.h carries them; version 2).
//
// A sandbox process has one control channel (fds 3-5: the supervisor's: setup, heartbeat) and
// one data channel per proxy worker (fds 7.. in threes), so each ring has one producer thread
// and one consumer thread on each side. On a data channel the proxy sends a stream's *events*
// (what reached the Golang filter in the proxy's chain) and the sandbox answers with *actions*
// (what the filter lets through, replies, flow control). Payloads are wire.h encodings, listed
// beside each type; `id` is the proxy's stream id on that channel, `dir` 0 = request, 1 =
// response. Everything the proxy reads is checked (stream_messages.h); a message it cannot
// accept costs the process (SIGKILL), never the proxy.

#include <cstdint>
#include <string>

#include "source/config/bootstrap.h"

namespace corral::sandbox {

enum class MessageType : uint32_t {
  Shutdown = 0,    // proxy -> sandbox: exit 0
  Ping = 1,        // proxy -> sandbox: answer Pong (the heartbeat)
  Pong = 2,        // sandbox -> proxy: "pid=P uid=U env=N seccomp=M fds=fd:target;..."
  LoadFailed = 3,  // sandbox -> proxy: the library could not be loaded; the text says why
  Ready = 4,       // sandbox -> proxy: the library is loaded and the plugin configs parsed
  // proxy -> sandbox, first message: {bytes library_id, u32 workers, bytes config YAML}. The
  // sandbox parses the bootstrap and creates the Golang filters of its library_id (the plugin's
  // Parse runs there); a config error answers LoadFailed with the YAML path.
  Setup = 5,
  // sandbox -> proxy: the plugin's metrics and the filter's own stats that changed, sent before
  // the action that follows the change (stats_forwarding.h has the format).
  StatsUpdate = 6,

  // ---- data channels: events (proxy -> sandbox) ----
  // {u64 id, bytes filter key (the filter's YAML path), info(full), headers, bool end}
  StreamStart = 16,
  DecodeData = 17,      // {u64 id, bool end, bytes}
  DecodeTrailers = 18,  // {u64 id, headers}
  EncodeHeaders = 19,   // {u64 id, info(proxy part), headers, bool end}
  EncodeData = 20,      // {u64 id, bool end, bytes}
  EncodeTrailers = 21,  // {u64 id, headers}
  StreamEnd = 22,       // {u64 id, info(proxy part)}: runs the log phases and destroys

  // ---- data channels: actions (sandbox -> proxy) ----
  // {u64 id, u8 dir, bool unchanged, [headers unless unchanged], bool end}: the filter let the
  // headers go on (`unchanged`: exactly as the proxy sent them)
  PassHeaders = 32,
  PassData = 33,       // {u64 id, u8 dir, bool end, bytes}
  PassTrailers = 34,   // {u64 id, u8 dir, headers}
  LocalReply = 35,     // {u64 id, u32 status, headers, bytes body, bytes details}
  ResetStream = 36,    // {u64 id, bytes details}
  ReadDisable = 37,    // {u64 id, bool disable}: request flow control
  PauseResponse = 38,  // {u64 id, bool pause}: the filter's encoder watermark
  // {u64 id, u32 route cache clears, bool drain, bool override, [bytes host, bool strict],
  //  u32 n, n x {bytes filter, bytes Struct}, u32 m, m x {bytes key, bytes value}}
  InfoUpdate = 39,
  Idle = 40,  // {u64 id, u64 n}: the filter is out of Go, having been given the stream's first n
              // events
};

// True for an http_filters[] entry that is a Golang filter of `library_id` (what a sandbox of
// that library serves, and what a reload compares).
inline bool isGolangFilterOf(const config::HttpFilter& filter, const std::string& library_id) {
  const YAML::Node id = filter.typed_config.node["library_id"];
  return filter.typed_config.type_url ==
             "type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.Config" &&
         id && id.IsScalar() && id.Scalar() == library_id;
}

// A Setup with no config: the process loads its library and serves no filter (tests).
inline std::string emptySetup() {
  return std::string(12, '\0');  // bytes "", u32 0, bytes ""
}

// The fds a sandbox process finds: the channel (launcher.h) and the plugin library.
constexpr int kChannelMemfd = 3;
constexpr int kToSandboxEventfd = 4;
constexpr int kToProxyEventfd = 5;
constexpr int kLibraryFd = 6;
constexpr int kFirstDataChannelFd = 7;  // worker w's channel: 7 + 3w, 8 + 3w, 9 + 3w

}  // namespace corral::sandbox
