#pragma once
// envoy.filters.http.router: the terminal HTTP filter. Answers direct_response routes, picks a
// host of the route's cluster, forwards the request over a pooled upstream connection and
// streams the response back through the encoder filters. Errors answer as Envoy does: no route
// 404, connect failure / reset before response 503, circuit breaker 503, timeout 504.
// One instance per stream, on its worker thread.

#include <optional>

#include "source/http/filter.h"
#include "source/http/filter_registry.h"
#include "source/upstream/conn_pool.h"

namespace corral::router {

inline constexpr const char* kRouterName = "envoy.filters.http.router";
inline constexpr const char* kRouterType =
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

// Registers the router with a filter registry.
void registerRouter(http::FilterRegistry& registry);

class RouterFilter : public http::StreamDecoderFilter,
                     public upstream::PoolCallbacks,
                     public upstream::ResponseDecoder {
public:
  // StreamDecoderFilter
  http::FilterHeadersStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  http::FilterDataStatus decodeData(http::Buffer& data, bool end_stream) override;
  http::FilterTrailersStatus decodeTrailers(http::HeaderMap& trailers) override;
  void setDecoderFilterCallbacks(http::StreamDecoderFilterCallbacks& callbacks) override {
    callbacks_ = &callbacks;
  }
  void onDestroy() override;

  // PoolCallbacks
  void onPoolReady(upstream::ClientConnection& connection) override;
  void onPoolFailure(upstream::PoolFailure reason) override;

  // ResponseDecoder
  void onUpstreamHeaders(http::HeaderMapPtr headers, bool end_stream) override;
  void onUpstreamData(std::string_view data, bool end_stream) override;
  void onUpstreamTrailers(http::HeaderMapPtr trailers) override;
  void onUpstreamReset(std::string_view reason) override;

private:
  void onRequestComplete();
  void onResponseComplete();
  void onTimeout();
  void replyError(uint32_t status, std::string_view body, std::string_view details,
                  const char* flag);
  void flowControlUpstreamWrite();
  void cleanup();

  http::StreamDecoderFilterCallbacks* callbacks_ = nullptr;
  const upstream::ClusterInfo* cluster_ = nullptr;
  const config::RouteAction* action_ = nullptr;
  upstream::ConnPool* pool_ = nullptr;
  upstream::PendingHandle* pending_ = nullptr;
  upstream::ClientConnection* conn_ = nullptr;
  http::HeaderMap* request_headers_ = nullptr;
  http::Buffer pending_body_;  // request body that arrived before the connection
  http::HeaderMapPtr pending_trailers_;
  std::optional<event::Timer> timeout_;  // in place: no allocation per request
  std::chrono::steady_clock::time_point upstream_start_;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool done_ = false;
  bool paused_by_filters_ = false;         // an encoder filter is above its watermark
  bool waiting_downstream_drain_ = false;  // paused until the downstream connection drains
};

}  // namespace corral::router
