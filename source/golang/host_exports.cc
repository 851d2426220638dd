// The envoyGo* host functions a Go plugin calls (every function of the SDK's api.h), compiled
// against that header so that a signature drift fails the build. Linked into executables with
// corral_export_go_abi() and exported dynamically: the .so binds them at first call, from any
// thread, and already during dlopen (the SDK's package init asks for the log level and may log).
//
// Everything arriving here is untrusted: null pointers and negative lengths are refused with an
// error status rather than dereferenced. Functions of the network filter and the TCP bridge
// (which corral does not run) answer "not supported" (CAPIInvalidPhase), so a plugin library
// that also contains such filters still loads and its HTTP filters work.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api.h"
#include "source/common/logger.h"
#include "source/golang/go_abi.h"
#include "source/golang/go_library.h"
#include "source/golang/golang_filter.h"

using corral::golang::GolangFilter;
using corral::golang::GolangStatus;
using corral::golang::GoRequest;
using corral::golang::GoString;
using corral::golang::HttpConfigInternal;
using corral::golang::ProcessorState;

namespace {

// The SDK's api.LogType values (Trace 0 ... Critical 5) are spdlog's level numbers.
spdlog::level::level_enum toSpdlog(uint32_t level) {
  return level <= static_cast<uint32_t>(spdlog::level::critical)
             ? static_cast<spdlog::level::level_enum>(level)
             : spdlog::level::critical;
}

bool validBytes(const void* p, int len) {
  return len == 0 || (p != nullptr && len > 0);
}

std::string_view view(const void* p, int len) {
  return len <= 0 ? std::string_view() : std::string_view(static_cast<const char*>(p), len);
}

// A processState call: the phase must be in Go and the filter still there (held for the call).
template <class F>
CAPIStatus withState(void* s, F&& f) {
  if (s == nullptr) {
    return CAPIInvalidPhase;
  }
  auto* state = static_cast<ProcessorState*>(static_cast<processState*>(s));
  if (!state->isProcessingInGo()) {
    return CAPINotInGo;
  }
  auto* req = static_cast<GoRequest*>(state->req);
  if (auto filter = req->filter.lock()) {
    return f(*filter, *state);
  }
  return CAPIFilterIsGone;
}

// An httpRequest call (not tied to a phase); Envoy also requires Go to own some phase.
template <class F>
CAPIStatus withRequest(void* r, F&& f) {
  if (r == nullptr) {
    return CAPIInvalidPhase;
  }
  auto* req = static_cast<GoRequest*>(static_cast<httpRequest*>(r));
  if (auto filter = req->filter.lock()) {
    if (!filter->isProcessingInGo()) {
      return CAPINotInGo;
    }
    return f(*filter);
  }
  return CAPIFilterIsGone;
}

HttpConfigInternal* toConfig(void* c) {
  return static_cast<HttpConfigInternal*>(static_cast<httpConfig*>(c));
}

}  // namespace

extern "C" {

// ---- logging ----

void envoyGoFilterLog(uint32_t level, void* message_data, int message_len) {
  if (!validBytes(message_data, message_len)) {
    return;
  }
  auto& logger = corral::Logger::get();
  const auto lvl = toSpdlog(level);
  const auto& ctx = corral::golang::tls_go_call;
  if (ctx.errors != nullptr && lvl >= spdlog::level::err) {
    if (!ctx.errors->empty()) {
      *ctx.errors += "; ";
    }
    ctx.errors->append(view(message_data, message_len));
  }
  if (!logger.should_log(lvl)) {
    return;
  }
  if (ctx.plugin != nullptr) {
    logger.log(lvl, "[golang][{}] {}", *ctx.plugin, view(message_data, message_len));
  } else {
    logger.log(lvl, "[golang] {}", view(message_data, message_len));
  }
}

uint32_t envoyGoFilterLogLevel() {
  return static_cast<uint32_t>(corral::Logger::get().level());
}

// ---- processState functions ----

CAPIStatus envoyGoFilterHttpContinue(void* s, int status) {
  return withState(s, [status](GolangFilter& f, ProcessorState& st) {
    if (status < 0) {
      return CAPIInvalidPhase;
    }
    return f.continueStatus(st, static_cast<GolangStatus>(status));
  });
}

CAPIStatus envoyGoFilterHttpSendLocalReply(void* s, int response_code, void* body_text_data,
                                           int body_text_len, void* headers, int headers_num,
                                           long long int /*grpc_status*/, void* details_data,
                                           int details_len) {
  if (!validBytes(body_text_data, body_text_len) || !validBytes(details_data, details_len) ||
      headers_num < 0 || (headers_num > 0 && headers == nullptr)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    std::vector<std::pair<std::string, std::string>> hs;
    const auto* strs = static_cast<const GoString*>(headers);
    for (int i = 0; i + 1 < headers_num; i += 2) {
      hs.emplace_back(std::string(strs[i].p, static_cast<size_t>(strs[i].n)),
                      std::string(strs[i + 1].p, static_cast<size_t>(strs[i + 1].n)));
    }
    return f.sendLocalReply(st, static_cast<uint32_t>(response_code),
                            std::string(view(body_text_data, body_text_len)), std::move(hs),
                            std::string(view(details_data, details_len)));
  });
}

CAPIStatus envoyGoFilterHttpSendPanicReply(void* s, void* details_data, int details_len) {
  if (!validBytes(details_data, details_len)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.sendPanicReply(st, view(details_data, details_len));
  });
}

CAPIStatus envoyGoFilterHttpAddData(void* s, void* data, int data_len, bool is_streaming) {
  if (!validBytes(data, data_len)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.addData(st, view(data, data_len), is_streaming);
  });
}

CAPIStatus envoyGoFilterHttpInjectData(void* s, void* data, int data_len) {
  if (!validBytes(data, data_len)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.injectData(st, view(data, data_len));
  });
}

CAPIStatus envoyGoFilterHttpGetHeader(void* s, void* key_data, int key_len, uint64_t* value_data,
                                      int* value_len) {
  if (!validBytes(key_data, key_len) || value_data == nullptr || value_len == nullptr) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.getHeader(st, view(key_data, key_len), value_data, value_len);
  });
}

CAPIStatus envoyGoFilterHttpCopyHeaders(void* s, void* strs, void* buf) {
  if (strs == nullptr) {
    return CAPIInvalidPhase;
  }
  return withState(
      s, [&](GolangFilter& f, ProcessorState& st) { return f.copyHeaders(st, false, strs, buf); });
}

CAPIStatus envoyGoFilterHttpSetHeaderHelper(void* s, void* key_data, int key_len, void* value_data,
                                            int value_len, headerAction action) {
  if (!validBytes(key_data, key_len) || !validBytes(value_data, value_len)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.setHeader(st, false, view(key_data, key_len), view(value_data, value_len), action);
  });
}

CAPIStatus envoyGoFilterHttpRemoveHeader(void* s, void* key_data, int key_len) {
  if (!validBytes(key_data, key_len)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.removeHeader(st, false, view(key_data, key_len));
  });
}

CAPIStatus envoyGoFilterHttpGetBuffer(void* s, uint64_t buffer, void* value) {
  if (value == nullptr) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.copyBuffer(st, buffer, static_cast<char*>(value));
  });
}

CAPIStatus envoyGoFilterHttpDrainBuffer(void* s, uint64_t buffer, uint64_t length) {
  return withState(
      s, [&](GolangFilter& f, ProcessorState& st) { return f.drainBuffer(st, buffer, length); });
}

CAPIStatus envoyGoFilterHttpSetBufferHelper(void* s, uint64_t buffer, void* data, int length,
                                            bufferAction action) {
  if (!validBytes(data, length)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.setBuffer(st, buffer, view(data, length), action);
  });
}

CAPIStatus envoyGoFilterHttpCopyTrailers(void* s, void* strs, void* buf) {
  if (strs == nullptr) {
    return CAPIInvalidPhase;
  }
  return withState(
      s, [&](GolangFilter& f, ProcessorState& st) { return f.copyHeaders(st, true, strs, buf); });
}

CAPIStatus envoyGoFilterHttpSetTrailer(void* s, void* key_data, int key_len, void* value,
                                       int value_len, headerAction action) {
  if (!validBytes(key_data, key_len) || !validBytes(value, value_len)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.setHeader(st, true, view(key_data, key_len), view(value, value_len), action);
  });
}

CAPIStatus envoyGoFilterHttpRemoveTrailer(void* s, void* key_data, int key_len) {
  if (!validBytes(key_data, key_len)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.removeHeader(st, true, view(key_data, key_len));
  });
}

CAPIStatus envoyGoFilterHttpSetUpstreamOverrideHost(void* s, void* host_data, int host_len,
                                                    bool strict) {
  if (!validBytes(host_data, host_len)) {
    return CAPIInvalidPhase;
  }
  return withState(s, [&](GolangFilter& f, ProcessorState& st) {
    return f.setUpstreamOverrideHost(st, view(host_data, host_len), strict);
  });
}

// ---- httpRequest functions ----

CAPIStatus envoyGoFilterHttpClearRouteCache(void* r, bool refresh) {
  return withRequest(r, [refresh](GolangFilter& f) { return f.clearRouteCache(refresh); });
}

CAPIStatus envoyGoFilterHttpGetStringValue(void* r, int id, uint64_t* value_data, int* value_len) {
  if (value_data == nullptr || value_len == nullptr) {
    return CAPIInvalidPhase;
  }
  return withRequest(r,
                     [&](GolangFilter& f) { return f.getStringValue(id, value_data, value_len); });
}

CAPIStatus envoyGoFilterHttpGetIntegerValue(void* r, int id, uint64_t* value) {
  if (value == nullptr) {
    return CAPIInvalidPhase;
  }
  return withRequest(r, [&](GolangFilter& f) { return f.getIntegerValue(id, value); });
}

CAPIStatus envoyGoFilterHttpGetDynamicMetadata(void* r, void* name_data, int name_len,
                                               uint64_t* value_data, int* value_len) {
  if (!validBytes(name_data, name_len) || value_data == nullptr || value_len == nullptr) {
    return CAPIInvalidPhase;
  }
  return withRequest(r, [&](GolangFilter& f) {
    return f.getDynamicMetadata(std::string(view(name_data, name_len)), value_data, value_len);
  });
}

CAPIStatus envoyGoFilterHttpSetDynamicMetadata(void* r, void* name_data, int name_len,
                                               void* key_data, int key_len, void* buf_data,
                                               int buf_len) {
  if (!validBytes(name_data, name_len) || !validBytes(key_data, key_len) ||
      !validBytes(buf_data, buf_len)) {
    return CAPIInvalidPhase;
  }
  return withRequest(r, [&](GolangFilter& f) {
    return f.setDynamicMetadata(std::string(view(name_data, name_len)),
                                std::string(view(key_data, key_len)),
                                std::string(view(buf_data, buf_len)));
  });
}

void envoyGoFilterHttpFinalize(void* r, int /*reason*/) {
  if (r != nullptr) {
    GolangFilter::finalizeRequest(static_cast<GoRequest*>(static_cast<httpRequest*>(r)));
  }
}

CAPIStatus envoyGoFilterHttpSetStringFilterState(void* r, void* key_data, int key_len,
                                                 void* value_data, int value_len,
                                                 int /*state_type*/, int /*life_span*/,
                                                 int /*stream_sharing*/) {
  if (!validBytes(key_data, key_len) || !validBytes(value_data, value_len)) {
    return CAPIInvalidPhase;
  }
  return withRequest(r, [&](GolangFilter& f) {
    return f.setStringFilterState(std::string(view(key_data, key_len)),
                                  std::string(view(value_data, value_len)));
  });
}

CAPIStatus envoyGoFilterHttpGetStringFilterState(void* r, void* key_data, int key_len,
                                                 uint64_t* value_data, int* value_len) {
  if (!validBytes(key_data, key_len) || value_data == nullptr || value_len == nullptr) {
    return CAPIInvalidPhase;
  }
  return withRequest(r, [&](GolangFilter& f) {
    return f.getStringFilterState(std::string(view(key_data, key_len)), value_data, value_len);
  });
}

CAPIStatus envoyGoFilterHttpGetStringProperty(void* r, void* key_data, int key_len,
                                              uint64_t* value_data, int* value_len, int* rc) {
  if (!validBytes(key_data, key_len) || value_data == nullptr || value_len == nullptr ||
      rc == nullptr) {
    return CAPIInvalidPhase;
  }
  return withRequest(r, [&](GolangFilter& f) {
    return f.getStringProperty(std::string(view(key_data, key_len)), value_data, value_len, rc);
  });
}

CAPIStatus envoyGoFilterHttpGetStringSecret(void* r, void* key_data, int key_len,
                                            uint64_t* value_data, int* value_len) {
  if (!validBytes(key_data, key_len) || value_data == nullptr || value_len == nullptr) {
    return CAPIInvalidPhase;
  }
  return withRequest(r, [&](GolangFilter& f) {
    return f.getSecret(std::string(view(key_data, key_len)), value_data, value_len);
  });
}

CAPIStatus envoyGoFilterHttpSetDrainConnectionUponCompletion(void* r) {
  return withRequest(r, [](GolangFilter& f) { return f.setDrainConnectionUponCompletion(); });
}

// ---- config functions ----

void envoyGoConfigHttpFinalize(void* c) {
  if (c != nullptr) {
    delete toConfig(c);
  }
}

CAPIStatus envoyGoFilterHttpDefineMetric(void* c, uint32_t metric_type, void* name_data,
                                         int name_len, uint32_t* metric_id) {
  if (c == nullptr || !validBytes(name_data, name_len) || metric_id == nullptr) {
    return CAPIInvalidPhase;
  }
  return toConfig(c)->metrics->define(metric_type, view(name_data, name_len), metric_id);
}

CAPIStatus envoyGoFilterHttpIncrementMetric(void* c, uint32_t metric_id, int64_t offset) {
  if (c == nullptr) {
    return CAPIInvalidPhase;
  }
  return toConfig(c)->metrics->increment(metric_id, offset);
}

CAPIStatus envoyGoFilterHttpGetMetric(void* c, uint32_t metric_id, uint64_t* value) {
  if (c == nullptr || value == nullptr) {
    return CAPIInvalidPhase;
  }
  return toConfig(c)->metrics->get(metric_id, value);
}

CAPIStatus envoyGoFilterHttpRecordMetric(void* c, uint32_t metric_id, uint64_t value) {
  if (c == nullptr) {
    return CAPIInvalidPhase;
  }
  return toConfig(c)->metrics->record(metric_id, value);
}

// ---- network filter, upstream connections, TCP bridge: not supported by corral ----

CAPIStatus envoyGoFilterDownstreamClose(void*, int) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoFilterDownstreamWrite(void*, void*, int, int) {
  return CAPIInvalidPhase;
}
void envoyGoFilterDownstreamFinalize(void*, int) {}
CAPIStatus envoyGoFilterDownstreamInfo(void*, int, void*) {
  return CAPIInvalidPhase;
}
void* envoyGoFilterUpstreamConnect(void*, void*, uint64_t) {
  return nullptr;
}
CAPIStatus envoyGoFilterUpstreamConnEnableHalfClose(void*, int) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoFilterUpstreamWrite(void*, void*, int, int) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoFilterUpstreamClose(void*, int) {
  return CAPIInvalidPhase;
}
void envoyGoFilterUpstreamFinalize(void*, int) {}
CAPIStatus envoyGoFilterUpstreamInfo(void*, int, void*) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoFilterSetFilterState(void*, void*, void*, int, int, int) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoFilterGetFilterState(void*, void*, void*) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoHttpTcpBridgeCopyHeaders(void*, void*, void*) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoHttpTcpBridgeSetRespHeader(void*, void*, int, void*, int, headerAction) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoHttpTcpBridgeRemoveRespHeader(void*, void*, int) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoHttpTcpBridgeGetBuffer(void*, uint64_t, void*) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoHttpTcpBridgeDrainBuffer(void*, uint64_t, uint64_t) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoHttpTcpBridgeSetBufferHelper(void*, uint64_t, void*, int, bufferAction) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoHttpTcpBridgeGetStringValue(void*, int, uint64_t*, int*) {
  return CAPIInvalidPhase;
}
CAPIStatus envoyGoHttpTcpBridgeSetSelfHalfCloseForUpstreamConn(void*, int) {
  return CAPIInvalidPhase;
}

}  // extern "C"
