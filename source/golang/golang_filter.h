#pragma once
// The Golang filter (envoy.filters.http.golang), in-process: a Go plugin built with Envoy's Go
// SDK runs in this process, called through the SDK's exports, and calls back through the
// envoyGo* host functions (host_exports.cc), which land in the methods below. The filter-chain
// side is in golang_filter.cc, the methods Go calls in golang_filter_go_calls.cc and
// properties.cc (the seam the sandbox mode will cut along).
//
// Behaviour follows Envoy's golang_filter.cc: per direction a ProcessorState; Go's status for
// each phase drives iteration; Go may finish a phase later from any goroutine (Continue,
// SendLocalReply), which is posted to the stream's worker thread. A recovered panic answers 500
// "error happened in filter\r\n" and counts <stat_prefix>golang.panic_error.
//
// Lifetimes: GoRequest is the httpRequest Go keys its per-request state by. It outlives the
// filter: Go may call in from a goroutine after the stream is gone (answered FilterIsDestroy /
// FilterIsGone), and it is freed only when Go's finalizer calls envoyGoFilterHttpFinalize (or
// with the filter if Go was never entered). Calls from goroutines hold a strong reference to the
// filter for their duration (the weak_ptr in GoRequest).
//
// Thread-safety: filter callbacks run on the worker; the Go-facing methods may run on any thread
// and say below what they do off the worker.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "api.h"
#include "source/golang/plugin_config.h"
#include "source/golang/processor_state.h"
#include "source/http/filter.h"
#include "source/http/filter_registry.h"

namespace corral::golang {

class GolangFilter;

// What the filter chain knows about the Golang filter's per-route configs.
struct PerRouteConfigs {
  // The ConfigsPerRoute of each virtual host / route that has one, by its YAML object.
  std::map<const void*, RouteConfigs> by_owner;
};

struct GoRequest : httpRequest {
  GoRequest() : decoding(this, false), encoding(this, true) {
    plugin_name = {nullptr, 0};
    configId = 0;
    worker_id = 0;
    is_golang_processing_log = 0;
  }
  std::weak_ptr<GolangFilter> filter;
  ProcessorState decoding;
  ProcessorState encoding;
  // Anchors a string handed to Go until Go copies it.
  std::string str_value;
  stats::Gauge* live = nullptr;  // decremented when Go finalizes the request
};

class GolangFilter : public http::StreamFilter, public std::enable_shared_from_this<GolangFilter> {
public:
  GolangFilter(FilterConfigSharedPtr config, std::shared_ptr<const PerRouteConfigs> route_configs,
               std::string filter_name);
  ~GolangFilter() override;

  // http::StreamDecoderFilter / StreamEncoderFilter
  http::FilterHeadersStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(http::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(http::HeaderMap& trailers) override;
  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& cb) override {
    decoder_callbacks_ = &cb;
    dispatcher_ = &cb.dispatcher();
  }
  http::FilterHeadersStatus encodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus encodeData(http::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus encodeTrailers(http::HeaderMap& trailers) override;
  void setEncoderFilterCallbacks(http::StreamEncoderFilterCallbacks& cb) override {
    encoder_callbacks_ = &cb;
  }
  void onDestroy() override;

  // ---- called by Go (golang_filter_go_calls.cc): any thread; posted to the worker, answered
  // under mu_, or CAPIYield + envoyGoRequestSemaDec, as Envoy does for each ----
  CAPIStatus continueStatus(ProcessorState& state, GolangStatus status);
  CAPIStatus sendLocalReply(ProcessorState& state, uint32_t code, std::string body,
                            std::vector<std::pair<std::string, std::string>> headers,
                            std::string details);
  CAPIStatus sendPanicReply(ProcessorState& state, std::string_view details);
  CAPIStatus addData(ProcessorState& state, std::string_view data, bool streaming);
  CAPIStatus injectData(ProcessorState& state, std::string_view data);
  CAPIStatus getHeader(ProcessorState& state, std::string_view key, uint64_t* value_data,
                       int* value_len);
  CAPIStatus copyHeaders(ProcessorState& state, bool trailers, void* strs, void* buf);
  CAPIStatus setHeader(ProcessorState& state, bool trailers, std::string_view key,
                       std::string_view value, headerAction action);
  CAPIStatus removeHeader(ProcessorState& state, bool trailers, std::string_view key);
  CAPIStatus copyBuffer(ProcessorState& state, uint64_t handle, char* out);
  CAPIStatus drainBuffer(ProcessorState& state, uint64_t handle, uint64_t length);
  CAPIStatus setBuffer(ProcessorState& state, uint64_t handle, std::string_view data,
                       bufferAction action);
  CAPIStatus setUpstreamOverrideHost(ProcessorState& state, std::string_view host, bool strict);
  CAPIStatus clearRouteCache(bool refresh);
  CAPIStatus getStringValue(int id, uint64_t* value_data, int* value_len);
  CAPIStatus getIntegerValue(int id, uint64_t* value);
  CAPIStatus getDynamicMetadata(std::string filter_name, uint64_t* value_data, int* value_len);
  CAPIStatus setDynamicMetadata(std::string filter_name, std::string key, std::string value);
  CAPIStatus setStringFilterState(std::string key, std::string value);
  CAPIStatus getStringFilterState(std::string key, uint64_t* value_data, int* value_len);
  CAPIStatus getStringProperty(std::string path, uint64_t* value_data, int* value_len, int* rc);
  CAPIStatus getSecret(std::string name, uint64_t* value_data, int* value_len);
  CAPIStatus setDrainConnectionUponCompletion();

  bool hasDestroyed() const { return destroyed_.load(std::memory_order_acquire); }
  // True if either direction (or a log callback) is in Go.
  bool isProcessingInGo() const {
    return req_->decoding.isProcessingInGo() || req_->encoding.isProcessingInGo();
  }
  bool isThreadSafe() const { return dispatcher().isThreadSafe(); }
  // The worker's loop: it outlives every stream, so a goroutine may use it even while the
  // stream is being torn down (the callbacks objects may not).
  event::Dispatcher& dispatcher() const { return *dispatcher_; }
  // Go's finalizer released `req` (any thread).
  static void finalizeRequest(GoRequest* req);

private:
  // One phase into Go and its result applied; true when the phase is done.
  bool doHeaders(ProcessorState& state, http::HeaderMap& headers, bool end_stream);
  bool doData(ProcessorState& state, http::Buffer& data, bool end_stream);
  bool doDataGo(ProcessorState& state, http::Buffer& data, bool end_stream);
  bool doTrailers(ProcessorState& state, http::HeaderMap& trailers);
  bool doTrailersGo(ProcessorState& state, http::HeaderMap& trailers);
  // Go's status, checked: an out-of-range value from the plugin is a 500 (counted).
  GolangStatus checkStatus(ProcessorState& state, uint64_t raw);
  void continueStatusInternal(ProcessorState& state, GolangStatus status);
  void sendLocalReplyInternal(ProcessorState& state, uint32_t code, std::string_view body,
                              const std::vector<std::pair<std::string, std::string>>& headers,
                              std::string_view details);
  // Buffers `data` for `state` while Go is busy (flow control / limits as in Envoy). False if
  // the buffer went over the limit while waiting for the whole body: answered 413/500.
  bool addBufferData(ProcessorState& state, http::Buffer& data);
  void continueProcessing(ProcessorState& state);
  void continueDoData(ProcessorState& state);
  void injectToChain(ProcessorState& state, http::Buffer& data, bool end_stream);
  http::StreamFilterCallbacks& callbacks(ProcessorState& state);
  // First entry into Go: fixes the (merged) config id for this request.
  void initRequest();
  uint64_t mergedConfigId();
  void runLog(uint64_t type);
  void maybeResumeReading(ProcessorState& state);
  // A getter that needs worker state (Envoy's CAPIYield protocol): answered now on the worker;
  // from a goroutine, CAPIYield now and `fill` runs on the worker, its status into *rc, then
  // envoyGoRequestSemaDec wakes the goroutine. Caller holds mu_.
  CAPIStatus answerOnWorker(std::function<CAPIStatus(GolangFilter&)> fill, int* rc = nullptr);
  // Hands `value` to Go through the request's anchor string (valid until Go copies it).
  CAPIStatus handOut(std::string value, uint64_t* value_data, int* value_len);
  // Runs `fn` on the worker: now if on it, else posted (skipped if the filter is gone by then).
  void onWorker(std::function<void(GolangFilter&)> fn);
  std::string property(std::string_view path, bool* found);

  FilterConfigSharedPtr config_;
  std::shared_ptr<const PerRouteConfigs> route_configs_;
  const std::string filter_name_;
  GoRequest* req_;
  http::StreamDecoderFilterCallbacks* decoder_callbacks_ = nullptr;
  event::Dispatcher* dispatcher_ = nullptr;
  http::StreamEncoderFilterCallbacks* encoder_callbacks_ = nullptr;
  http::HeaderMap* request_headers_ = nullptr;
  std::mutex mu_;  // Envoy's filter mutex: off-thread readers vs. destroy
  std::atomic<bool> destroyed_{false};
  bool entered_go_ = false;  // Go knows this request (it then owns req_'s lifetime)
};

// The process's Go libraries, by library_id.
GoLibraryRegistry& libraries();

// Registers envoy.filters.http.golang (type ...golang.v3alpha.Config).
void registerGolangFilter(http::FilterRegistry& registry);

// At shutdown, once no filter or config is left: runs each loaded Go runtime's GC and waits for
// its finalizers (the SDK's envoyGoFilterCleanUp), so everything Go held of ours is freed.
void collectGoGarbage();

}  // namespace corral::golang
