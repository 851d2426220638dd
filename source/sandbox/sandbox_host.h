#pragma once
// The sandbox process's side of the Golang filter (DESIGN.md §2): the *same* filter code as in
// in-process mode — GolangFilter, its ProcessorState, the envoyGo* host functions — running
// against a mirror of each proxy stream.
//
// For every Golang filter of its library_id in the config, the host builds a one-filter chain:
// that Golang filter (created by the in-process factory: the plugin's Parse runs here) followed
// by a *sink* in place of the router. A stream is an http::ActiveStream over that chain, so the
// filter manager's iteration rules (stop, buffer, continue, inject, limits, local replies) are
// the proxy's own. Events from the proxy enter it as the codec's calls would (request) and as
// the router's would (response); whatever comes out — at the sink (request) or at the stream's
// owner (response, local replies, resets, flow control) — goes back as an action. The proxy
// applies actions at the Golang filter's place in its chain (golang/sandboxed_filter.cc).
//
// Also sent back: the plugin's changes to the stream info (metadata, filter state, upstream
// override host, drain, route cache), before the action that follows them; and Idle, once the
// filter is out of Go for every event received (the proxy's callback_timeout waits for it).
//
// Thread-safety: the process's loop thread only (the Golang filter posts goroutine work there).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "source/common/stats.h"
#include "source/config/bootstrap.h"
#include "source/event/dispatcher.h"
#include "source/http/conn_manager_config.h"
#include "source/http/filter_registry.h"
#include "source/sandbox/channel.h"
#include "source/sandbox/stats_forwarding.h"

namespace corral::sandbox {

class SandboxHost {
public:
  // Parses the proxy's config and creates the Golang filters of `library_id` (its library must
  // be registered with the Golang filter already). Errors name the YAML path.
  // `send_stats` carries a StatsUpdate to the proxy (the control channel).
  static absl::StatusOr<std::unique_ptr<SandboxHost>> create(
      event::Dispatcher& dispatcher, const std::string& library_id, uint32_t concurrency,
      const std::string& yaml, std::function<void(std::string)> send_stats);
  ~SandboxHost();

  // Serves the events arriving on a data channel (one per proxy worker).
  void serve(std::unique_ptr<Channel> channel);
  // Destroys every stream (shutdown).
  void stop();

  // Implementation (sandbox_host.cc): a data channel, a stream mirror, the chain's sink.
  struct Link;
  class Stream;
  class Sink;

private:
  explicit SandboxHost(event::Dispatcher& dispatcher);
  void onReadable(Link& link);
  // One event; false if it is malformed (the proxy never sends one: the process stops).
  bool onEvent(Link& link, uint32_t type, std::string_view payload);
  // After events or goroutine work: info updates and Idle for the streams that owe them.
  void afterWork();
  void flush(Link& link);
  // Sends what changed in the plugin's stats (at most every few milliseconds).
  void syncStats();

  event::Dispatcher& dispatcher_;
  int spin_checks_ = 0;       // before sleeping on a data channel
  stats::Store stats_;        // the filter's and the plugin's: forwarded to the proxy
  stats::Store chain_stats_;  // the mirror chains' connection-manager stats: kept here
  std::unique_ptr<StatsReporter> reporter_;
  std::function<void(std::string)> send_stats_;
  std::chrono::steady_clock::time_point last_stats_{};
  event::TimerPtr stats_timer_;
  http::FilterRegistry registry_;
  config::Bootstrap bootstrap_;
  // The chain of each Golang filter of this library, by the filter's YAML path.
  std::map<std::string, std::shared_ptr<const http::ConnectionManagerConfig>> chains_;
  std::vector<std::unique_ptr<config::HttpConnectionManager>> hcms_;
  std::vector<std::unique_ptr<Link>> links_;
};

}  // namespace corral::sandbox
