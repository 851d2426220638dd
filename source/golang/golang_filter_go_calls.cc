// The GolangFilter methods Go calls back (through host_exports.cc), from the stream's worker
// during a phase or from any goroutine: Envoy's rules for each (posted to the worker, answered
// inline under the filter's lock, or CAPIYield and a wake-up once the worker has the answer).

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "source/common/logger.h"
#include "source/golang/go_abi.h"
#include "source/golang/golang_filter.h"
#include "source/golang/plugin_config_any.h"
#include "source/http/codec.h"

namespace corral::golang {

bool validPluginHeaderField(std::string_view key, std::string_view value) {
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
  if (!validPluginHeaderField(http::toLower(key), value)) {
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
  std::string out;
  switch (id) {
  case 1:  // route name
    out = info.route_name;
    break;
  case 2:  // filter chain name: corral listeners have one unnamed chain
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
  return handOut(std::move(out), value_data, value_len);
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

CAPIStatus GolangFilter::answerOnWorker(std::function<CAPIStatus(GolangFilter&)> fill, int* rc) {
  if (isThreadSafe()) {
    return fill(*this);
  }
  onWorker([fill = std::move(fill), rc](GolangFilter& f) {
    const CAPIStatus status = fill(f);
    if (rc != nullptr) {
      *rc = status;
    }
    f.config_->library().exports().request_sema_dec(f.req_);
  });
  return CAPIYield;
}

CAPIStatus GolangFilter::handOut(std::string value, uint64_t* value_data, int* value_len) {
  req_->str_value = std::move(value);
  *value_data = toHandle(req_->str_value.data());
  *value_len = static_cast<int>(req_->str_value.size());
  return CAPIOK;
}

CAPIStatus GolangFilter::getDynamicMetadata(std::string filter_name, uint64_t* value_data,
                                            int* value_len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  return answerOnWorker([value_data, value_len, filter_name](GolangFilter& f) {
    const auto& md = f.decoder_callbacks_->streamInfo().dynamic_metadata;
    auto it = md.find(filter_name);
    return f.handOut(it == md.end() ? std::string() : it->second, value_data, value_len);
  });
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
  return answerOnWorker([key, value_data, value_len](GolangFilter& f) {
    const auto& fs = f.decoder_callbacks_->streamInfo().filter_state;
    auto it = fs.find(key);
    // Absent: Go keeps its zero value (the empty string), as with Envoy.
    return it == fs.end() ? CAPIOK : f.handOut(it->second, value_data, value_len);
  });
}

CAPIStatus GolangFilter::getStringProperty(std::string path, uint64_t* value_data, int* value_len,
                                           int* rc) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hasDestroyed()) {
    return CAPIFilterIsDestroy;
  }
  return answerOnWorker(
      [path, value_data, value_len](GolangFilter& f) {
        bool found = false;
        std::string v = f.property(path, &found);
        return found ? f.handOut(std::move(v), value_data, value_len) : CAPIValueNotFound;
      },
      rc);
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
