#include "source/golang/golang_filter.h"

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/common/stats.h"
#include "source/golang/go_abi.h"

namespace corral::golang {
namespace {

// Go's worker id: workers register stats slot index+1 (server/worker.cc); the SDK sizes its
// request tables by `concurrency`, so an id must be below it.
uint32_t currentWorkerId(uint32_t concurrency) {
  const size_t slot = stats::threadSlot();
  const uint32_t id = slot == 0 ? 0 : static_cast<uint32_t>(slot - 1);
  return id < concurrency ? id : 0;
}

}  // namespace

GolangFilter::GolangFilter(FilterConfigSharedPtr config,
                           std::shared_ptr<const PerRouteConfigs> route_configs,
                           std::string filter_name)
    : config_(std::move(config)),
      route_configs_(std::move(route_configs)),
      filter_name_(std::move(filter_name)),
      req_(new GoRequest()) {
  req_->plugin_name = {config_->pluginName().data(), config_->pluginName().size()};
  req_->worker_id = currentWorkerId(config_->concurrency());
}

GolangFilter::~GolangFilter() {
  // Go never saw this request: nobody else holds it. Otherwise Go's finalizer frees it.
  if (!entered_go_) {
    delete req_;
  }
}

void GolangFilter::finalizeRequest(GoRequest* req) {
  if (req->live != nullptr) {
    req->live->dec();
  }
  // Go finalizes a request only once nothing in Go refers to it: no goroutine is inside a host
  // call for it, and the filter has long been destroyed (Go dropped it at OnHttpDestroy). Work
  // still posted for it checks the filter's weak pointer before touching the request.
  delete req;
}

void GolangFilter::initRequest() {
  if (entered_go_) {
    return;
  }
  req_->filter = weak_from_this();
  req_->configId = mergedConfigId();
  req_->live = &config_->liveRequests();
  req_->live->inc();
  entered_go_ = true;
}

uint64_t GolangFilter::mergedConfigId() {
  uint64_t id = config_->configId();
  if (!route_configs_ || route_configs_->by_owner.empty()) {
    return id;
  }
  auto route = decoder_callbacks_->route();
  if (!route) {
    return id;
  }
  // Filter level, then virtual host, then route: each level merges onto the one above.
  auto mergeFrom = [&](const config::PerFilterConfigs& configs) {
    auto it = configs.find(filter_name_);
    if (it == configs.end()) {
      return;
    }
    auto owner = route_configs_->by_owner.find(&it->second);
    if (owner == route_configs_->by_owner.end()) {
      return;
    }
    auto plugin = owner->second.find(config_->pluginName());
    if (plugin != owner->second.end()) {
      id = plugin->second->mergedConfigId(id);
    }
  };
  if (route->virtual_host != nullptr) {
    mergeFrom(route->virtual_host->typed_per_filter_config);
  }
  if (route->entry != nullptr) {
    mergeFrom(route->entry->typed_per_filter_config);
  }
  return id;
}

http::StreamFilterCallbacks& GolangFilter::callbacks(ProcessorState& state) {
  if (state.encoding()) {
    return *encoder_callbacks_;
  }
  return *decoder_callbacks_;
}

// ---- filter chain callbacks (worker thread) ----

http::FilterHeadersStatus GolangFilter::decodeHeaders(http::HeaderMap& headers, bool end_stream) {
  request_headers_ = &headers;
  // Match the route now (the router reuses it): Go may ask for the route name from any thread.
  decoder_callbacks_->route();
  req_->decoding.setEndStream(end_stream);
  return doHeaders(req_->decoding, headers, end_stream) ? http::FilterHeadersStatus::Continue
                                                        : http::FilterHeadersStatus::StopIteration;
}

http::FilterDataStatus GolangFilter::decodeData(http::Buffer& data, bool end_stream) {
  ProcessorState& state = req_->decoding;
  state.setEndStream(end_stream);
  if (doData(state, data, end_stream)) {
    state.moveOutDoData(data);
    return http::FilterDataStatus::Continue;
  }
  return http::FilterDataStatus::StopIterationNoBuffer;
}

http::FilterTrailersStatus GolangFilter::decodeTrailers(http::HeaderMap& trailers) {
  return doTrailers(req_->decoding, trailers) ? http::FilterTrailersStatus::Continue
                                              : http::FilterTrailersStatus::StopIteration;
}

http::FilterHeadersStatus GolangFilter::encodeHeaders(http::HeaderMap& headers, bool end_stream) {
  req_->encoding.setEndStream(end_stream);
  return doHeaders(req_->encoding, headers, end_stream) ? http::FilterHeadersStatus::Continue
                                                        : http::FilterHeadersStatus::StopIteration;
}

http::FilterDataStatus GolangFilter::encodeData(http::Buffer& data, bool end_stream) {
  ProcessorState& state = req_->encoding;
  state.setEndStream(end_stream);
  if (doData(state, data, end_stream)) {
    state.moveOutDoData(data);
    return http::FilterDataStatus::Continue;
  }
  return http::FilterDataStatus::StopIterationNoBuffer;
}

http::FilterTrailersStatus GolangFilter::encodeTrailers(http::HeaderMap& trailers) {
  return doTrailers(req_->encoding, trailers) ? http::FilterTrailersStatus::Continue
                                              : http::FilterTrailersStatus::StopIteration;
}

void GolangFilter::onDestroy() {
  const GoExports& go = config_->library().exports();
  ScopedGoCall call(config_->pluginName());
  if (entered_go_) {
    // Envoy's order: stream complete, access log, destroy.
    req_->is_golang_processing_log = 1;
    go.on_http_stream_complete(req_);
    req_->is_golang_processing_log = 0;
    runLog(6);  // api.AccessLogDownstreamEnd (Envoy AccessLogType 6)
  }
  const bool in_go = isProcessingInGo();
  {
    std::lock_guard<std::mutex> lock(mu_);
    destroyed_.store(true, std::memory_order_release);
  }
  if (entered_go_) {
    // 0 Normal, 1 Terminate (Go was still working on a phase).
    go.on_http_destroy(req_, in_go ? 1 : 0);
  }
}

void GolangFilter::runLog(uint64_t type) {
  auto size = [](const http::HeaderMap* m) { return m ? m->size() : 0; };
  auto bytes = [](const http::HeaderMap* m) { return m ? m->byteSize() : 0; };
  http::HeaderMap* req_headers = request_headers_;
  http::HeaderMap* req_trailers = decoder_callbacks_->requestTrailers();
  http::HeaderMap* resp_headers = encoder_callbacks_->responseHeaders();
  http::HeaderMap* resp_trailers = encoder_callbacks_->responseTrailers();
  req_->decoding.headers = req_headers;
  req_->decoding.trailers = req_trailers;
  req_->encoding.headers = resp_headers;
  req_->encoding.trailers = resp_trailers;
  req_->is_golang_processing_log = 1;
  ScopedGoCall call(config_->pluginName());
  config_->library().exports().on_http_log(
      req_, type, &req_->decoding, &req_->encoding, size(req_headers), bytes(req_headers),
      size(req_trailers), bytes(req_trailers), size(resp_headers), bytes(resp_headers),
      size(resp_trailers), bytes(resp_trailers));
  req_->is_golang_processing_log = 0;
}

GolangStatus GolangFilter::checkStatus(ProcessorState& state, uint64_t raw) {
  if (raw <= static_cast<uint64_t>(GolangStatus::StopNoBuffer)) {
    return static_cast<GolangStatus>(raw);
  }
  CORRAL_LOG(err, "golang filter: plugin {} returned an invalid status {}", config_->pluginName(),
             raw);
  config_->invalidStatus().inc();
  sendLocalReply(state, 500, "error happened in filter\r\n", {}, "golang_invalid_status");
  return GolangStatus::LocalReply;
}

bool GolangFilter::doHeaders(ProcessorState& state, http::HeaderMap& headers, bool end_stream) {
  state.headers = &headers;
  state.processHeader(end_stream);
  initRequest();
  ScopedGoCall call(config_->pluginName());
  const uint64_t raw = config_->library().exports().on_http_header(
      &state, end_stream ? 1 : 0, headers.size(), headers.byteSize());
  const bool done = state.handleGolangStatus(checkStatus(state, raw));
  if (done) {
    state.headers = nullptr;
  }
  return done;
}

bool GolangFilter::doDataGo(ProcessorState& state, http::Buffer& data, bool end_stream) {
  state.processData(end_stream);
  http::Buffer& chunk = state.pushDoData(data);
  maybeResumeReading(state);
  ScopedGoCall call(config_->pluginName());
  const uint64_t raw = config_->library().exports().on_http_data(&state, end_stream ? 1 : 0,
                                                                 toHandle(&chunk), chunk.length());
  return state.handleGolangStatus(checkStatus(state, raw));
}

bool GolangFilter::doData(ProcessorState& state, http::Buffer& data, bool end_stream) {
  switch (state.filterState()) {
  case FilterState::WaitingData:
    return doDataGo(state, data, end_stream);
  case FilterState::WaitingAllData:
    if (end_stream) {
      if (!state.isBufferDataEmpty()) {
        if (!addBufferData(state, data)) {
          return false;  // over the limit: answered locally
        }
        data.move(state.bufferData());
      }
      return doDataGo(state, data, end_stream);
    }
    addBufferData(state, data);
    return false;
  case FilterState::ProcessingHeader:
  case FilterState::ProcessingData:
    addBufferData(state, data);
    return false;
  default:
    // Done (or a local reply is on its way): Go has finished with this direction.
    return state.filterState() == FilterState::Done;
  }
}

bool GolangFilter::doTrailersGo(ProcessorState& state, http::HeaderMap& trailers) {
  state.processTrailer();
  ScopedGoCall call(config_->pluginName());
  const uint64_t raw =
      config_->library().exports().on_http_header(&state, 1, trailers.size(), trailers.byteSize());
  return state.handleGolangStatus(checkStatus(state, raw));
}

bool GolangFilter::doTrailers(ProcessorState& state, http::HeaderMap& trailers) {
  state.trailers = &trailers;
  switch (state.filterState()) {
  case FilterState::WaitingTrailer:
  case FilterState::WaitingData:
    return doTrailersGo(state, trailers);
  case FilterState::WaitingAllData:
    if (!state.isBufferDataEmpty()) {
      // The buffered body goes to Go first (not the end of the stream: trailers follow).
      http::Buffer body;
      body.move(state.bufferData());
      bool done = doDataGo(state, body, false);
      if (state.filterState() == FilterState::WaitingTrailer) {
        continueDoData(state);
        done = doTrailersGo(state, trailers);
      }
      return done;
    }
    continueDoData(state);
    return doTrailersGo(state, trailers);
  case FilterState::Done:
    return true;
  default:
    return false;  // Go is busy; the trailers wait (continueStatusInternal picks them up)
  }
}

bool GolangFilter::addBufferData(ProcessorState& state, http::Buffer& data) {
  state.bufferData().move(data);
  const size_t limit =
      state.encoding() ? encoder_callbacks_->bufferLimit() : decoder_callbacks_->bufferLimit();
  if (state.bufferData().length() <= limit) {
    return true;
  }
  if (state.filterState() == FilterState::WaitingAllData) {
    // Envoy's answers: the request body is too large (413), the response cannot be held (500).
    state.clearDoData();
    state.bufferData().clear();
    if (state.encoding()) {
      encoder_callbacks_->sendLocalReply(500, "Internal Server Error",
                                         "response_payload_too_large");
    } else {
      decoder_callbacks_->sendLocalReply(413, "Payload Too Large", "request_payload_too_large");
    }
    return false;
  }
  if (!state.watermark_requested) {
    // Go is busy and data keeps coming: pause its source (the downstream connection, or the
    // upstream response through the router) until the buffer goes to Go.
    state.watermark_requested = true;
    if (state.encoding()) {
      encoder_callbacks_->onEncoderFilterAboveWriteBufferHighWatermark();
    } else {
      decoder_callbacks_->readDisableDownstream(true);
    }
  }
  return true;
}

void GolangFilter::maybeResumeReading(ProcessorState& state) {
  if (state.watermark_requested && state.isBufferDataEmpty()) {
    state.watermark_requested = false;
    if (state.encoding()) {
      encoder_callbacks_->onEncoderFilterBelowWriteBufferLowWatermark();
    } else {
      decoder_callbacks_->readDisableDownstream(false);
    }
  }
}

void GolangFilter::continueProcessing(ProcessorState& state) {
  if (state.encoding()) {
    encoder_callbacks_->continueEncoding();
  } else {
    decoder_callbacks_->continueDecoding();
  }
}

void GolangFilter::injectToChain(ProcessorState& state, http::Buffer& data, bool end_stream) {
  if (state.encoding()) {
    encoder_callbacks_->injectEncodedDataToFilterChain(data, end_stream);
  } else {
    decoder_callbacks_->injectDecodedDataToFilterChain(data, end_stream);
  }
}

void GolangFilter::continueDoData(ProcessorState& state) {
  if (!state.endStream() && state.doDataEmpty()) {
    return;
  }
  http::Buffer out;
  state.moveOutDoData(out);
  injectToChain(state, out, state.isProcessingEndStream());
}

// Go finished a phase later (Continue from a goroutine): Envoy's continueStatusInternal.
void GolangFilter::continueStatusInternal(ProcessorState& state, GolangStatus status) {
  const FilterState saved = state.filterState();
  if (!state.isProcessingInGo()) {
    return;  // a local reply already ended the phase
  }
  if (state.handleGolangStatus(status)) {
    switch (saved) {
    case FilterState::ProcessingHeader:
      if (state.isProcessingEndStream() || !state.isStreamEnd()) {
        continueProcessing(state);
      }
      break;
    case FilterState::ProcessingData:
      continueDoData(state);
      break;
    case FilterState::ProcessingTrailer:
      continueDoData(state);
      if (hasDestroyed()) {
        return;
      }
      continueProcessing(state);
      break;
    default:
      break;
    }
    if (hasDestroyed()) {
      return;
    }
  }
  // Data (or the end) that arrived while Go was busy goes to Go now.
  const FilterState current = state.filterState();
  if ((current == FilterState::WaitingData && (!state.isBufferDataEmpty() || state.endStream())) ||
      (current == FilterState::WaitingAllData && state.isStreamEnd())) {
    http::Buffer body;
    body.move(state.bufferData());
    if (!doDataGo(state, body, state.endStream())) {
      return;
    }
    continueDoData(state);
    if (hasDestroyed()) {
      return;
    }
  }
  if (state.filterState() == FilterState::WaitingTrailer && state.trailers != nullptr) {
    if (doTrailersGo(state, *state.trailers)) {
      continueProcessing(state);
    }
  }
}

void GolangFilter::sendLocalReplyInternal(
    ProcessorState& state, uint32_t code, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view details) {
  state.clearDoData();
  state.bufferData().clear();
  maybeResumeReading(state);
  if (!state.encoding()) {
    state.setFilterState(FilterState::WaitingHeader);
  }
  const bool from_plugin = details != "golang_panic" && details != "golang_invalid_status";
  callbacks(state).sendLocalReply(code, body, details, [&](http::HeaderMap& h) {
    if (from_plugin) {
      h.remove("x-corral-error");  // the plugin's reply is exactly what it asked for
    }
    for (size_t i = 0; i < headers.size(); ++i) {
      if (!validPluginHeaderField(http::toLower(headers[i].first), headers[i].second) ||
          headers[i].first.empty() || headers[i].first.front() == ':') {
        CORRAL_LOG(warn,
                   "golang filter: plugin {} put an invalid header {:?} in a local reply: dropped",
                   config_->pluginName(), headers[i].first);
        continue;
      }
      bool first = true;
      for (size_t j = 0; j < i; ++j) {
        first = first && headers[j].first != headers[i].first;
      }
      if (first) {
        h.set(headers[i].first, headers[i].second);
      } else {
        h.add(headers[i].first, headers[i].second);
      }
    }
  });
}

void GolangFilter::onWorker(std::function<void(GolangFilter&)> fn) {
  if (isThreadSafe()) {
    fn(*this);
    return;
  }
  std::weak_ptr<GolangFilter> weak = weak_from_this();
  dispatcher().post([weak, fn = std::move(fn)] {
    auto self = weak.lock();
    if (self && !self->hasDestroyed()) {
      fn(*self);
    }
  });
}

}  // namespace corral::golang
