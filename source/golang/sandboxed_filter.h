#pragma once
// The Golang filter of a library whose isolation is `sandbox` (the default): the proxy's half
// of DESIGN.md §2's seam (the sandbox's half is sandbox/sandbox_host.h).
//
// In the proxy's chain this filter holds what reaches it — headers StopIteration, body
// StopIterationNoBuffer, trailers StopIteration — and sends it to the stream's sandbox process
// as events. What the plugin lets through comes back as actions and is put back in the chain
// at this filter's place: headers replace the held ones and go on, body is injected after this
// filter, trailers replace the held ones and go on; a local reply made in the sandbox (already
// through the plugin's own encode phase there) is answered here and passes this filter's
// encoder untouched. Actions are checked like any plugin output (header fields, statuses,
// order); a bad one kills the process.
//
// Failures: when the process dies (or none is ready, or the channel breaks) the stream gets the
// library's on_failure: fail_closed answers 503 with `x-corral-sandbox: <reason>` (or resets the
// stream once its response has started); fail_open lets the stream go on without this filter —
// possible only while nothing of the direction in progress has been let through yet (the filter
// keeps a copy of the body it sent for this, up to the buffer limit); otherwise it fails closed.
// A stream waiting on Go longer than callback_timeout gets 504 (`x-corral-sandbox: timeout`).
//
// Thread-safety: the stream's worker thread only.

#include <memory>
#include <string>

#include "source/http/filter.h"
#include "source/sandbox/sandboxed_library.h"

namespace corral::golang {

class SandboxedFilter : public http::StreamFilter, public sandbox::StreamEndpoint {
public:
  SandboxedFilter(std::shared_ptr<sandbox::SandboxedLibrary> library, const std::string& key,
                  const std::string& plugin_name);
  ~SandboxedFilter() override;

  // http::StreamFilter
  http::FilterHeadersStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(http::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(http::HeaderMap& trailers) override;
  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& cb) override {
    decoder_ = &cb;
  }
  http::FilterHeadersStatus encodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus encodeData(http::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus encodeTrailers(http::HeaderMap& trailers) override;
  void setEncoderFilterCallbacks(http::StreamEncoderFilterCallbacks& cb) override {
    encoder_ = &cb;
  }
  void onDestroy() override;

  // sandbox::StreamEndpoint
  bool onAction(sandbox::MessageType type, sandbox::WireReader& r) override;
  void onSandboxLost(const std::string& reason) override;
  void onLinkDrained() override;

private:
  enum class Mode { Sandboxed, Bypass, Done };
  // One direction as this filter holds it.
  struct Direction {
    http::HeaderMap* headers = nullptr;
    http::HeaderMap* trailers = nullptr;
    bool headers_only = false;  // the proxy's headers ended the stream
    bool headers_held = false;  // sent, not let through yet
    bool trailers_held = false;
    bool end_sent = false;    // the end of this direction went to the sandbox
    bool passed_any = false;  // the sandbox let something through
    bool passed_end = false;  // ... up to the end
    std::string retained;     // what went to the sandbox (fail_open), if `retain`
    bool retain = false;
    bool lost = false;  // body went to the sandbox that `retained` does not have
  };

  void sendData(sandbox::MessageType type, Direction& d, http::Buffer& data, bool end_stream);
  void sendTrailers(sandbox::MessageType type, Direction& d, http::HeaderMap& trailers);
  void sent();  // an event went out: the callback timer runs until the matching Idle
  bool applyHeaders(sandbox::WireReader& r);
  bool applyData(sandbox::WireReader& r);
  bool applyTrailers(sandbox::WireReader& r);
  bool applyLocalReply(sandbox::WireReader& r);
  bool applyInfo(sandbox::WireReader& r);
  void onTimeout();
  // Reading the request / the response source paused when the sandbox asks (its filter's own
  // flow control) or while our channel to it is backed up.
  void applyFlow();
  // Stops talking to the process (the stream there is ended) and undoes its flow control.
  void detach();
  // The on_failure action; `code` 503 (lost / unavailable) or 504 (timeout).
  void fail(uint32_t code, const std::string& reason, const std::string& detail);
  bool failOpen();
  void release(Direction& d, bool request);

  std::shared_ptr<sandbox::SandboxedLibrary> library_;
  const std::string& key_;
  const std::string& plugin_;
  http::StreamDecoderFilterCallbacks* decoder_ = nullptr;
  http::StreamEncoderFilterCallbacks* encoder_ = nullptr;
  sandbox::WorkerLink* link_ = nullptr;
  uint64_t id_ = 0;
  Mode mode_ = Mode::Sandboxed;
  Direction request_, response_;
  bool own_reply_ = false;  // our local reply is passing this filter's encoder
  uint64_t events_sent_ = 0;
  event::TimerPtr timer_;
  uint32_t route_cache_clears_ = 0;
  bool sandbox_read_disable_ = false, backlog_read_disable_ = false, read_disabled_ = false;
  bool sandbox_pause_ = false, backlog_pause_ = false, response_paused_ = false;
};

// The factory for a sandboxed Golang filter (golang_filter_config.cc makes it).
http::FilterFactoryPtr makeSandboxedFilterFactory(
    std::shared_ptr<sandbox::SandboxedLibrary> library, std::string key, std::string plugin_name);

}  // namespace corral::golang
