#include "source/golang/golang_filter.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "source/common/logger.h"
#include "source/common/stats.h"
#include "source/golang/plugin_config_any.h"
#include "source/http/codec.h"

namespace corral::golang {
namespace {

// Go's string header, as the SDK passes []string to CopyHeaders / SendLocalReply.
struct GoString {
  const char* p;
  int64_t n;
};

uint64_t toHandle(const void* p) {
  return reinterpret_cast<uint64_t>(p);
}

// A header field from a plugin must be something we can put on the wire as it is: a plugin
// value with CR/LF would split the message. Pseudo-headers go into the request or status line.
bool validPluginField(std::string_view key, std::string_view value) {
  if (key == ":path") {
    return http::isValidRequestTarget(value);
  }
  if (key == ":method") {
    return http::isValidFieldName(value);
  }
  if (key == ":status") {
    return value.size() == 3 && value.find_first_not_of("0123456789") == std::string_view::npos;
  }
  const std::string_view name = !key.empty() && key.front() == ':' ? key.substr(1) : key;
  return http::isValidFieldName(name) && http::isValidFieldValue(value);
}

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
  if (!state.encoding() && !state.watermark_requested) {
    state.watermark_requested = true;
    decoder_callbacks_->readDisableDownstream(true);
  }
  return true;
}

void GolangFilter::maybeResumeReading(ProcessorState& state) {
  if (state.watermark_requested && state.isBufferDataEmpty()) {
    state.watermark_requested = false;
    decoder_callbacks_->readDisableDownstream(false);
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
      if (!validPluginField(http::toLower(headers[i].first), headers[i].second) ||
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

// ---- host functions ----

CAPIStatus GolangFilter::continueStatus(ProcessorState& state, GolangStatus status) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  if (static_cast<uint64_t>(status) > static_cast<uint64_t>(GolangStatus::StopNoBuffer)) {
    return CAPIInvalidPhase;
  }
  // Always posted, as in Envoy: Go may call this from inside the callback it is about to return
  // from (the status it returns then is Running).
  std::weak_ptr<GolangFilter> weak = weak_from_this();
  dispatcher().post([weak, &state, status] {
    auto self = weak.lock();
    if (self && !self->hasDestroyed()) {
      self->continueStatusInternal(state, status);
    }
  });
  return CAPIOK;
}

CAPIStatus GolangFilter::sendLocalReply(ProcessorState& state, uint32_t code, std::string body,
                                        std::vector<std::pair<std::string, std::string>> headers,
                                        std::string details) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  if (code < 200 || code > 599) {
    code = 500;  // not a status a client can be answered with
  }
  std::weak_ptr<GolangFilter> weak = weak_from_this();
  dispatcher().post([weak, &state, code, body = std::move(body), headers = std::move(headers),
                     details = std::move(details)] {
    auto self = weak.lock();
    if (self && !self->hasDestroyed()) {
      self->sendLocalReplyInternal(state, code, body, headers, details);
    }
  });
  return CAPIOK;
}

CAPIStatus GolangFilter::sendPanicReply(ProcessorState& state, std::string_view details) {
  config_->panicError().inc();
  CORRAL_LOG(err, "golang filter: plugin {} panicked: {}", config_->pluginName(), details);
  return sendLocalReply(state, 500, "error happened in filter\r\n", {}, "golang_panic");
}

CAPIStatus GolangFilter::addData(ProcessorState& state, std::string_view data, bool streaming) {
  if (state.filterState() == FilterState::ProcessingData) {
    return CAPIInvalidPhase;  // use the BufferInstance in data callbacks
  }
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  if (isThreadSafe()) {
    http::Buffer buffer(data);
    if (state.encoding()) {
      encoder_callbacks_->addEncodedData(buffer, streaming);
    } else {
      decoder_callbacks_->addDecodedData(buffer, streaming);
    }
    return CAPIOK;
  }
  onWorker([&state, copy = std::string(data), streaming](GolangFilter& f) {
    http::Buffer buffer(copy);
    if (state.encoding()) {
      f.encoder_callbacks_->addEncodedData(buffer, streaming);
    } else {
      f.decoder_callbacks_->addDecodedData(buffer, streaming);
    }
  });
  return CAPIYield;
}

CAPIStatus GolangFilter::injectData(ProcessorState& state, std::string_view data) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  if (state.filterState() != FilterState::ProcessingData) {
    return CAPIInvalidPhase;
  }
  if (isThreadSafe()) {
    return CAPIInvalidScene;  // only from a goroutine, while the phase waits
  }
  onWorker([&state, copy = std::string(data)](GolangFilter& f) {
    http::Buffer buffer(copy);
    f.injectToChain(state, buffer, false);
  });
  return CAPIOK;
}

CAPIStatus GolangFilter::getHeader(ProcessorState& state, std::string_view key,
                                   uint64_t* value_data, int* value_len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  if (state.headers == nullptr) {
    return CAPIInvalidPhase;
  }
  // Go does not copy this value: it stays valid while the map is unchanged.
  const std::string* value = state.headers->get(http::toLower(key));
  if (value != nullptr) {
    *value_data = toHandle(value->data());
    *value_len = static_cast<int>(value->size());
  }
  return CAPIOK;
}

CAPIStatus GolangFilter::copyHeaders(ProcessorState& state, bool trailers, void* strs, void* buf) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  http::HeaderMap* map = trailers ? state.trailers : state.headers;
  if (map == nullptr) {
    return CAPIInvalidPhase;
  }
  // Go sized strs (2 per field) and buf (sum of key and value lengths) from the counts it was
  // given with the phase; the map has not changed since (Go owns the phase).
  auto* out = static_cast<GoString*>(strs);
  char* p = static_cast<char*>(buf);
  size_t i = 0;
  for (const auto& e : map->entries()) {
    for (const std::string* s : {&e.key, &e.value}) {
      out[i].p = s->empty() ? nullptr : p;
      out[i].n = static_cast<int64_t>(s->size());
      if (!s->empty()) {
        std::memcpy(p, s->data(), s->size());
        p += s->size();
      }
      ++i;
    }
  }
  return CAPIOK;
}

CAPIStatus GolangFilter::setHeader(ProcessorState& state, bool trailers, std::string_view key,
                                   std::string_view value, headerAction action) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  http::HeaderMap* map = trailers ? state.trailers : state.headers;
  if (map == nullptr) {
    return CAPIInvalidPhase;
  }
  if (!validPluginField(http::toLower(key), value)) {
    // Refused: the SDK turns this status into a panic, so the request gets a 500.
    CORRAL_LOG(warn, "golang filter: plugin {} set an invalid header field {:?}: refused",
               config_->pluginName(), key);
    return CAPIInvalidPhase;
  }
  auto apply = [map, action](std::string_view k, std::string_view v) {
    if (action == HeaderAdd) {
      map->add(k, v);
    } else {
      map->set(http::toLower(k), v);
    }
  };
  if (isThreadSafe()) {
    apply(key, value);
  } else {
    onWorker([apply, k = std::string(key), v = std::string(value)](GolangFilter&) { apply(k, v); });
  }
  return CAPIOK;
}

CAPIStatus GolangFilter::removeHeader(ProcessorState& state, bool trailers, std::string_view key) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  http::HeaderMap* map = trailers ? state.trailers : state.headers;
  if (map == nullptr) {
    return CAPIInvalidPhase;
  }
  if (isThreadSafe()) {
    map->remove(http::toLower(key));
  } else {
    onWorker([map, k = http::toLower(key)](GolangFilter&) { map->remove(k); });
  }
  return CAPIOK;
}

CAPIStatus GolangFilter::copyBuffer(ProcessorState& state, uint64_t handle, char* out) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  const auto* buffer = reinterpret_cast<const http::Buffer*>(handle);
  if (!state.hasDoData(buffer)) {
    return CAPIInvalidPhase;  // not a chunk Go was given: never dereferenced
  }
  std::memcpy(out, buffer->view().data(), buffer->length());
  return CAPIOK;
}

CAPIStatus GolangFilter::drainBuffer(ProcessorState& state, uint64_t handle, uint64_t length) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  auto* buffer = reinterpret_cast<http::Buffer*>(handle);
  if (!state.hasDoData(buffer)) {
    return CAPIInvalidPhase;
  }
  buffer->drain(length);
  return CAPIOK;
}

CAPIStatus GolangFilter::setBuffer(ProcessorState& state, uint64_t handle, std::string_view data,
                                   bufferAction action) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  auto* buffer = reinterpret_cast<http::Buffer*>(handle);
  if (!state.hasDoData(buffer)) {
    return CAPIInvalidPhase;
  }
  switch (action) {
  case Set:
    buffer->clear();
    buffer->add(data);
    break;
  case Prepend:
    buffer->prepend(data);
    break;
  default:
    buffer->add(data);
    break;
  }
  return CAPIOK;
}

CAPIStatus GolangFilter::setUpstreamOverrideHost(ProcessorState& state, std::string_view host,
                                                 bool strict) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  if (!state.isProcessingInGo()) {
    return CAPINotInGo;
  }
  if (state.encoding()) {
    return CAPIInvalidPhase;
  }
  // Envoy accepts an IP address with an optional port; we match endpoints by "ip:port".
  const size_t colon = host.rfind(':');
  const std::string_view ip = colon == std::string_view::npos ? host : host.substr(0, colon);
  in_addr v4{};
  in6_addr v6{};
  const std::string ip_str(ip.size() > 1 && ip.front() == '[' ? ip.substr(1, ip.size() - 2) : ip);
  if (inet_pton(AF_INET, ip_str.c_str(), &v4) != 1 &&
      inet_pton(AF_INET6, ip_str.c_str(), &v6) != 1) {
    return CAPIInvalidIPAddress;
  }
  onWorker([h = std::string(host), strict](GolangFilter& f) {
    f.decoder_callbacks_->streamInfo().upstream_override_host = std::make_pair(h, strict);
  });
  return CAPIOK;
}

CAPIStatus GolangFilter::clearRouteCache(bool refresh) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  onWorker([refresh](GolangFilter& f) {
    f.decoder_callbacks_->clearRouteCache();
    if (refresh) {
      f.decoder_callbacks_->route();
    }
  });
  return CAPIOK;
}

CAPIStatus GolangFilter::getStringValue(int id, uint64_t* value_data, int* value_len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  const http::StreamInfo& info = decoder_callbacks_->streamInfo();
  std::string& out = req_->str_value;
  switch (id) {
  case 1:  // route name
    out = info.route_name;
    break;
  case 2:  // filter chain name: corral listeners have one unnamed chain
    out.clear();
    break;
  case 5:
    if (info.response_code_details.empty()) {
      return CAPIValueNotFound;
    }
    out = info.response_code_details;
    break;
  case 7:
    out = info.downstream_local_address;
    break;
  case 8:
    out = info.downstream_remote_address;
    break;
  case 9:
    if (info.upstream_local_address.empty()) {
      return CAPIValueNotFound;
    }
    out = info.upstream_local_address;
    break;
  case 10:
    if (info.upstream_host.empty()) {
      return CAPIValueNotFound;
    }
    out = info.upstream_host;
    break;
  case 11:
    if (info.upstream_cluster.empty()) {
      return CAPIValueNotFound;
    }
    out = info.upstream_cluster;
    break;
  default:
    // 12 virtual cluster (none in corral), 100-119 TLS facts (no TLS yet), unknown ids.
    return CAPIValueNotFound;
  }
  *value_data = toHandle(out.data());
  *value_len = static_cast<int>(out.size());
  return CAPIOK;
}

CAPIStatus GolangFilter::getIntegerValue(int id, uint64_t* value) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  const http::StreamInfo& info = decoder_callbacks_->streamInfo();
  switch (id) {
  case 3:  // protocol: 0 HTTP/1.0, 1 HTTP/1.1
    *value = info.protocol_minor == 0 ? 0 : 1;
    return CAPIOK;
  case 4:
    if (!info.response_code) {
      return CAPIValueNotFound;
    }
    *value = *info.response_code;
    return CAPIOK;
  case 6:
    if (info.attempt_count == 0) {
      return CAPIValueNotFound;
    }
    *value = info.attempt_count;
    return CAPIOK;
  case 100:  // SslConnectionExists
    *value = 0;
    return CAPIOK;
  default:
    return CAPIValueNotFound;
  }
}

CAPIStatus GolangFilter::getDynamicMetadata(std::string filter_name, uint64_t* value_data,
                                            int* value_len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  auto fill = [value_data, value_len, filter_name](GolangFilter& f) {
    const auto& md = f.decoder_callbacks_->streamInfo().dynamic_metadata;
    auto it = md.find(filter_name);
    f.req_->str_value = it == md.end() ? std::string() : it->second;
    *value_data = toHandle(f.req_->str_value.data());
    *value_len = static_cast<int>(f.req_->str_value.size());
  };
  if (isThreadSafe()) {
    fill(*this);
    return CAPIOK;
  }
  onWorker([fill](GolangFilter& f) {
    fill(f);
    f.config_->library().exports().request_sema_dec(f.req_);
  });
  return CAPIYield;
}

CAPIStatus GolangFilter::setDynamicMetadata(std::string filter_name, std::string key,
                                            std::string value) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  onWorker([filter_name = std::move(filter_name), key = std::move(key),
            value = std::move(value)](GolangFilter& f) {
    auto& md = f.decoder_callbacks_->streamInfo().dynamic_metadata;
    if (!mergeValueIntoStruct(&md[filter_name], key, value)) {
      CORRAL_LOG(warn, "golang filter: plugin {} set metadata {}.{} that is not a protobuf Value",
                 f.config_->pluginName(), filter_name, key);
    }
  });
  return CAPIOK;
}

CAPIStatus GolangFilter::setStringFilterState(std::string key, std::string value) {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  onWorker([key = std::move(key), value = std::move(value)](GolangFilter& f) {
    f.decoder_callbacks_->streamInfo().filter_state[key] = value;
  });
  return CAPIOK;
}

CAPIStatus GolangFilter::getStringFilterState(std::string key, uint64_t* value_data,
                                              int* value_len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  auto fill = [key, value_data, value_len](GolangFilter& f) {
    const auto& fs = f.decoder_callbacks_->streamInfo().filter_state;
    auto it = fs.find(key);
    if (it != fs.end()) {
      f.req_->str_value = it->second;
      *value_data = toHandle(f.req_->str_value.data());
      *value_len = static_cast<int>(f.req_->str_value.size());
    }
  };
  if (isThreadSafe()) {
    fill(*this);
    return CAPIOK;
  }
  onWorker([fill](GolangFilter& f) {
    fill(f);
    f.config_->library().exports().request_sema_dec(f.req_);
  });
  return CAPIYield;
}

CAPIStatus GolangFilter::getStringProperty(std::string path, uint64_t* value_data, int* value_len,
                                           int* rc) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  auto fill = [path, value_data, value_len](GolangFilter& f) -> CAPIStatus {
    bool found = false;
    std::string v = f.property(path, &found);
    if (!found) {
      return CAPIValueNotFound;
    }
    f.req_->str_value = std::move(v);
    *value_data = toHandle(f.req_->str_value.data());
    *value_len = static_cast<int>(f.req_->str_value.size());
    return CAPIOK;
  };
  if (isThreadSafe()) {
    return fill(*this);
  }
  onWorker([fill, rc](GolangFilter& f) {
    *rc = fill(f);
    f.config_->library().exports().request_sema_dec(f.req_);
  });
  return CAPIYield;
}

CAPIStatus GolangFilter::getSecret(std::string, uint64_t*, int* value_len) {
  // Generic secrets (secret_configs / SDS) are not supported yet: every name is "not found".
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  *value_len = -1;
  return CAPIOK;
}

CAPIStatus GolangFilter::setDrainConnectionUponCompletion() {
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  onWorker([](GolangFilter& f) {
    f.decoder_callbacks_->streamInfo().drain_connection_upon_completion = true;
  });
  return CAPIOK;
}

}  // namespace corral::golang
