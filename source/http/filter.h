#pragma once
// The HTTP filter chain's extension point, after Envoy's StreamDecoderFilter /
// StreamEncoderFilter. Filters are created per stream by a FilterFactory and run on the stream's
// worker thread only. Decoder filters see the request in config order; encoder filters see the
// response in reverse order. A filter may stop iteration and resume it later with
// continueDecoding()/continueEncoding() — from the worker thread; a filter whose work finishes
// on another thread posts back through dispatcher().

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "source/config/bootstrap.h"
#include "source/event/dispatcher.h"
#include "source/http/buffer.h"
#include "source/http/header_map.h"
#include "source/http/stream_info.h"

namespace corral::http {

// StopIteration: later filters do not see the headers yet, but this filter still receives the
// body and trailers (and may Continue from those callbacks). StopAllIterationAndBuffer: this
// filter receives nothing more until it calls continue*(); the manager buffers the body for it.
enum class FilterHeadersStatus { Continue, StopIteration, StopAllIterationAndBuffer };
enum class FilterDataStatus { Continue, StopIterationAndBuffer, StopIterationNoBuffer };
enum class FilterTrailersStatus { Continue, StopIteration };

// A matched route: the virtual host and route entry from config, with per-filter configs.
struct Route {
  const config::VirtualHost* virtual_host = nullptr;
  const config::Route* entry = nullptr;
};

class StreamFilterCallbacks {
public:
  virtual ~StreamFilterCallbacks() = default;
  virtual event::Dispatcher& dispatcher() = 0;
  // The route for the current request headers (cached; recomputed after clearRouteCache()).
  virtual std::optional<Route> route() = 0;
  virtual void clearRouteCache() = 0;
  virtual StreamInfo& streamInfo() = 0;
  // Answers the stream with a locally generated response. `details` goes to the access log and
  // the x-corral-error header for errors. Ends decoding; the reply passes through the encoder
  // filters of the filters that have already seen the request.
  virtual void sendLocalReply(uint32_t status, std::string_view body, std::string_view details,
                              const std::function<void(HeaderMap&)>& modify_headers = {}) = 0;
  // Closes the downstream connection without a (further) response.
  virtual void resetStream(std::string_view details) = 0;
};

class StreamDecoderFilterCallbacks : public StreamFilterCallbacks {
public:
  virtual void continueDecoding() = 0;
  // The body buffered so far for this filter (StopIterationAndBuffer), or nullptr.
  virtual Buffer* decodingBuffer() = 0;
  // Adds data to the buffered body (while stopped) or passes it on (streaming).
  virtual void addDecodedData(Buffer& data, bool streaming) = 0;
  virtual HeaderMap* requestHeaders() = 0;
  virtual HeaderMap* requestTrailers() = 0;
  // Passes data straight to the filters after this one (a filter that keeps its own buffers and
  // returned StopIterationNoBuffer). Headers this filter still holds go on first, as in Envoy.
  virtual void injectDecodedDataToFilterChain(Buffer& data, bool end_stream) = 0;
  // The most a filter should buffer (Envoy's per_connection_buffer_limit_bytes).
  virtual size_t bufferLimit() const = 0;

  // For the terminal filter (the router): hand the upstream response to the encoder chain.
  virtual void encodeHeaders(HeaderMapPtr headers, bool end_stream) = 0;
  virtual void encodeData(Buffer& data, bool end_stream) = 0;
  virtual void encodeTrailers(HeaderMapPtr trailers) = 0;
  // Flow control for the terminal filter: stop/resume reading the downstream request.
  virtual void readDisableDownstream(bool disable) = 0;
  // Bytes waiting to be written downstream (the router pauses the upstream above a limit).
  virtual size_t downstreamBufferedBytes() const = 0;
  // Called once the downstream buffer has drained below the low mark, after a pause.
  virtual void onDownstreamDrained(std::function<void()> cb) = 0;
  // For the terminal filter: encoder filters ask to pause (true) or resume (false) the response
  // source while they hold more than they can buffer (Envoy's downstream watermark callbacks).
  virtual void setResponsePauseCallback(std::function<void(bool pause)> cb) = 0;
};

class StreamEncoderFilterCallbacks : public StreamFilterCallbacks {
public:
  virtual void continueEncoding() = 0;
  virtual Buffer* encodingBuffer() = 0;
  virtual void addEncodedData(Buffer& data, bool streaming) = 0;
  virtual void injectEncodedDataToFilterChain(Buffer& data, bool end_stream) = 0;
  virtual size_t bufferLimit() const = 0;
  // This filter holds more response data than it should: pause the response source until the
  // matching Below call (Envoy's onEncoderFilterAbove/BelowWriteBufferHighWatermark).
  virtual void onEncoderFilterAboveWriteBufferHighWatermark() = 0;
  virtual void onEncoderFilterBelowWriteBufferLowWatermark() = 0;
  virtual HeaderMap* responseHeaders() = 0;
  virtual HeaderMap* responseTrailers() = 0;
};

class StreamDecoderFilter {
public:
  virtual ~StreamDecoderFilter() = default;
  virtual FilterHeadersStatus decodeHeaders(HeaderMap& headers, bool end_stream) = 0;
  virtual FilterDataStatus decodeData(Buffer& data, bool end_stream) = 0;
  virtual FilterTrailersStatus decodeTrailers(HeaderMap& trailers) = 0;
  virtual void setDecoderFilterCallbacks(StreamDecoderFilterCallbacks& callbacks) = 0;
  // The stream is going away (complete or reset); no callbacks after this.
  virtual void onDestroy() {}
};

class StreamEncoderFilter {
public:
  virtual ~StreamEncoderFilter() = default;
  virtual FilterHeadersStatus encodeHeaders(HeaderMap& headers, bool end_stream) = 0;
  virtual FilterDataStatus encodeData(Buffer& data, bool end_stream) = 0;
  virtual FilterTrailersStatus encodeTrailers(HeaderMap& trailers) = 0;
  virtual void setEncoderFilterCallbacks(StreamEncoderFilterCallbacks& callbacks) = 0;
  virtual void onDestroy() {}
};

// A filter that sees both directions (the Golang filter is one).
class StreamFilter : public StreamDecoderFilter, public StreamEncoderFilter {
public:
  void onDestroy() override {}
};

using StreamDecoderFilterSharedPtr = std::shared_ptr<StreamDecoderFilter>;
using StreamEncoderFilterSharedPtr = std::shared_ptr<StreamEncoderFilter>;

// Adds a stream's filters; given to FilterFactory::createFilters for each stream.
class FilterChainBuilder {
public:
  virtual ~FilterChainBuilder() = default;
  virtual void addDecoderFilter(StreamDecoderFilterSharedPtr filter) = 0;
  virtual void addEncoderFilter(StreamEncoderFilterSharedPtr filter) = 0;
  virtual void addFilter(std::shared_ptr<StreamFilter> filter) = 0;
};

// Built once per http_filters[] entry from config (main thread); createFilters runs per stream
// on worker threads, so it must be thread-safe.
class FilterFactory {
public:
  virtual ~FilterFactory() = default;
  virtual void createFilters(FilterChainBuilder& builder) const = 0;
  // True for the terminal filter (the router), which must come last.
  virtual bool terminal() const { return false; }
};
using FilterFactoryPtr = std::unique_ptr<FilterFactory>;

}  // namespace corral::http
