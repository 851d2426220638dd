#include "source/router/router.h"

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/http/route_table.h"

namespace corral::router {

namespace {
constexpr size_t kHighWatermark = 1024 * 1024;  // Envoy's default per-connection buffer limit

class RouterFactory : public http::FilterFactory {
public:
  void createFilters(http::FilterChainBuilder& builder) const override {
    builder.addDecoderFilter(std::make_shared<RouterFilter>());
  }
  bool terminal() const override { return true; }
};

}  // namespace

void registerRouter(http::FilterRegistry& registry) {
  registry.add(kRouterName, kRouterType,
               [](const config::HttpFilter& filter,
                  http::FilterFactoryContext&) -> absl::StatusOr<http::FilterFactoryPtr> {
                 const auto& node = filter.typed_config.node;
                 if (node.IsDefined() && node.IsMap()) {
                   for (const auto& kv : node) {
                     if (kv.first.Scalar() != "@type") {
                       return absl::InvalidArgumentError(
                           fmt::format("{}.{}: unknown field; the router takes no options here",
                                       filter.typed_config.path, kv.first.Scalar()));
                     }
                   }
                 }
                 return std::make_unique<RouterFactory>();
               });
}

http::FilterHeadersStatus RouterFilter::decodeHeaders(http::HeaderMap& headers, bool end_stream) {
  request_headers_ = &headers;
  request_complete_ = end_stream;
  auto route = callbacks_->route();
  if (!route) {
    replyError(404, "Not Found", "route_not_found", "NR");
    return http::FilterHeadersStatus::StopIteration;
  }
  const config::Route& entry = *route->entry;
  if (entry.direct_response) {
    callbacks_->sendLocalReply(entry.direct_response->status, entry.direct_response->body,
                               "direct_response");
    return http::FilterHeadersStatus::StopIteration;
  }
  action_ = &*entry.route;
  auto* tlcm = upstream::ThreadLocalClusterManager::current();
  upstream::ThreadLocalCluster* cluster = tlcm ? tlcm->get(action_->cluster) : nullptr;
  if (cluster == nullptr) {
    replyError(503, "cluster not found", "cluster_not_found", "NC");
    return http::FilterHeadersStatus::StopIteration;
  }
  cluster_ = &cluster->info();
  callbacks_->streamInfo().upstream_cluster = cluster_->name();
  const auto& override_host = callbacks_->streamInfo().upstream_override_host;
  if (override_host) {
    // A filter picked the host (SetUpstreamOverrideHost); strict means no fallback to the LB.
    pool_ = cluster->poolForAddress(override_host->first);
    if (pool_ == nullptr && override_host->second) {
      replyError(503, "no healthy upstream", "no_healthy_upstream", "UH");
      return http::FilterHeadersStatus::StopIteration;
    }
  }
  if (pool_ == nullptr) {
    pool_ = cluster->choosePool();
  }
  if (pool_ == nullptr) {
    replyError(503, "no healthy upstream", "no_healthy_upstream", "UH");
    return http::FilterHeadersStatus::StopIteration;
  }
  http::applyRouteRewrites(entry, headers);
  callbacks_->streamInfo().upstream_host = pool_->host().address;
  callbacks_->streamInfo().attempt_count = 1;
  upstream_start_ = std::chrono::steady_clock::now();
  if (request_complete_) {
    onRequestComplete();
  }
  pending_ = pool_->newStream(*this);
  return http::FilterHeadersStatus::StopIteration;
}

http::FilterDataStatus RouterFilter::decodeData(http::Buffer& data, bool end_stream) {
  if (done_) {
    return http::FilterDataStatus::StopIterationNoBuffer;
  }
  request_complete_ = end_stream;
  if (conn_ != nullptr) {
    conn_->encodeData(data.view(), end_stream);
    flowControlUpstreamWrite();
  } else {
    pending_body_.add(data);
    if (pending_body_.length() > kHighWatermark) {
      callbacks_->readDisableDownstream(true);  // resumes once the connection takes the body
    }
  }
  if (end_stream) {
    onRequestComplete();
  }
  return http::FilterDataStatus::StopIterationNoBuffer;
}

http::FilterTrailersStatus RouterFilter::decodeTrailers(http::HeaderMap& trailers) {
  if (done_) {
    return http::FilterTrailersStatus::StopIteration;
  }
  request_complete_ = true;
  if (conn_ != nullptr) {
    conn_->encodeTrailers(trailers);
  } else {
    pending_trailers_ = std::make_unique<http::HeaderMap>(trailers);
  }
  onRequestComplete();
  return http::FilterTrailersStatus::StopIteration;
}

void RouterFilter::flowControlUpstreamWrite() {
  if (conn_ != nullptr && conn_->bufferedBytes() > kHighWatermark) {
    callbacks_->readDisableDownstream(true);
    conn_->onDrained([this] { callbacks_->readDisableDownstream(false); });
  }
}

void RouterFilter::onRequestComplete() {
  // Envoy's route timeout runs from the end of the request to the end of the response.
  if (action_ != nullptr && action_->timeout.count() > 0 && !timeout_) {
    timeout_.emplace(callbacks_->dispatcher(), [this] { onTimeout(); });
    timeout_->enable(action_->timeout);
  }
}

void RouterFilter::onPoolReady(upstream::ClientConnection& connection) {
  pending_ = nullptr;
  if (done_) {
    connection.release();
    return;
  }
  conn_ = &connection;
  conn_->setResponseDecoder(this);
  // An encoder filter holding too much of the response pauses the upstream until it catches up.
  callbacks_->setResponsePauseCallback([this](bool pause) {
    paused_by_filters_ = pause;
    if (conn_ != nullptr && !waiting_downstream_drain_) {
      conn_->readDisable(pause);
    }
  });
  const bool headers_only = request_complete_ && pending_body_.empty() && !pending_trailers_;
  conn_->encodeHeaders(*request_headers_, headers_only);
  if (!pending_body_.empty() || (request_complete_ && !headers_only && !pending_trailers_)) {
    conn_->encodeData(pending_body_.view(), request_complete_ && !pending_trailers_);
    pending_body_.clear();
    callbacks_->readDisableDownstream(false);
  }
  if (pending_trailers_) {
    conn_->encodeTrailers(*pending_trailers_);
    pending_trailers_.reset();
  }
  flowControlUpstreamWrite();
}

void RouterFilter::onPoolFailure(upstream::PoolFailure reason) {
  pending_ = nullptr;
  if (done_) {
    return;
  }
  if (reason == upstream::PoolFailure::Overflow) {
    replyError(503,
               "upstream connect error or disconnect/reset before headers. reset reason: "
               "overflow",
               "overflow", "UO");
    return;
  }
  replyError(503,
             fmt::format("upstream connect error or disconnect/reset before headers. reset "
                         "reason: {}",
                         upstream::poolFailureName(reason)),
             fmt::format("upstream_reset_before_response_started{{{}}}",
                         upstream::poolFailureName(reason)),
             "UF");
}

void RouterFilter::onUpstreamHeaders(http::HeaderMapPtr headers, bool end_stream) {
  if (done_) {
    return;
  }
  response_started_ = true;
  http::removeHopByHopHeaders(*headers, /*keep_te_trailers=*/false);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - upstream_start_);
  headers->set("x-envoy-upstream-service-time", std::to_string(elapsed.count()));
  uint32_t status = 0;
  for (char c : headers->getView(":status")) {
    status = status * 10 + static_cast<uint32_t>(c - '0');
  }
  if (status >= 100 && status < 600) {
    cluster_->stats().upstream_rq_xx[status / 100]->inc();
  }
  callbacks_->streamInfo().response_code_details = "via_upstream";
  if (end_stream) {
    // Give the connection back before the response goes downstream: finishing the downstream
    // stream destroys this filter.
    onResponseComplete();
  }
  callbacks_->encodeHeaders(std::move(headers), end_stream);
}

void RouterFilter::onUpstreamData(std::string_view data, bool end_stream) {
  if (done_) {
    return;
  }
  http::Buffer buffer(data);
  if (end_stream) {
    onResponseComplete();  // before encodeData, which may destroy this filter
    callbacks_->encodeData(buffer, true);
    return;
  }
  callbacks_->encodeData(buffer, false);
  if (conn_ != nullptr && callbacks_->downstreamBufferedBytes() > kHighWatermark) {
    waiting_downstream_drain_ = true;
    conn_->readDisable(true);
    callbacks_->onDownstreamDrained([this] {
      waiting_downstream_drain_ = false;
      if (conn_ != nullptr && !paused_by_filters_) {
        conn_->readDisable(false);
      }
    });
  }
}

void RouterFilter::onUpstreamTrailers(http::HeaderMapPtr trailers) {
  if (done_) {
    return;
  }
  onResponseComplete();  // before encodeTrailers, which may destroy this filter
  callbacks_->encodeTrailers(std::move(trailers));
}

void RouterFilter::onResponseComplete() {
  response_complete_ = true;
  timeout_.reset();
  if (cluster_ != nullptr) {
    cluster_->stats().upstream_rq_completed.inc();
  }
  if (conn_ != nullptr) {
    upstream::ClientConnection* c = conn_;
    conn_ = nullptr;
    // Reusable only if the request went out in full as well.
    c->release();
  }
}

void RouterFilter::onUpstreamReset(std::string_view reason) {
  conn_ = nullptr;
  if (done_) {
    return;
  }
  if (response_started_) {
    callbacks_->streamInfo().addResponseFlag("UR");
    callbacks_->resetStream(fmt::format("upstream_reset_after_response_started{{{}}}", reason));
    return;
  }
  replyError(503,
             fmt::format("upstream connect error or disconnect/reset before headers. reset "
                         "reason: {}",
                         reason),
             fmt::format("upstream_reset_before_response_started{{{}}}", reason), "UR");
}

void RouterFilter::onTimeout() {
  timeout_.reset();
  if (cluster_ != nullptr) {
    cluster_->stats().upstream_rq_timeout.inc();
  }
  if (response_started_) {
    callbacks_->streamInfo().addResponseFlag("UT");
    cleanup();
    callbacks_->resetStream("upstream_response_timeout");
    return;
  }
  replyError(504, "upstream request timeout", "upstream_response_timeout", "UT");
}

void RouterFilter::replyError(uint32_t status, std::string_view body, std::string_view details,
                              const char* flag) {
  callbacks_->streamInfo().addResponseFlag(flag);
  cleanup();
  callbacks_->sendLocalReply(status, body, details);
}

void RouterFilter::cleanup() {
  done_ = true;
  timeout_.reset();
  if (pending_ != nullptr) {
    upstream::PendingHandle* p = pending_;
    pending_ = nullptr;
    p->cancel();
  }
  if (conn_ != nullptr) {
    upstream::ClientConnection* c = conn_;
    conn_ = nullptr;
    c->reset();
  }
}

void RouterFilter::onDestroy() {
  cleanup();
}

}  // namespace corral::router
