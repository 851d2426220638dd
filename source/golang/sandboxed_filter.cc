#include "source/golang/sandboxed_filter.h"

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/golang/go_abi.h"
#include "source/http/codec.h"
#include "source/sandbox/stream_messages.h"

namespace corral::golang {
namespace {

using sandbox::MessageType;
using sandbox::WireReader;
using sandbox::WireWriter;
using OnFailure = config::Bootstrap::GolangLibrary::OnFailure;

// Body bytes per event: well inside a ring.
constexpr size_t kChunk = 256 * 1024;
constexpr size_t kMaxDetails = 256;
// Queued for a process beyond its ring: a stream adding to it has its source paused.
constexpr size_t kBacklogLimit = 256 * 1024;

bool validFields(const http::HeaderMap& h) {
  for (const auto& e : h.entries()) {
    if (!validPluginHeaderField(e.key, e.value)) {
      return false;
    }
  }
  return true;
}

class SandboxedFilterFactory : public http::FilterFactory {
public:
  SandboxedFilterFactory(std::shared_ptr<sandbox::SandboxedLibrary> library, std::string key,
                         std::string plugin)
      : library_(std::move(library)), key_(std::move(key)), plugin_(std::move(plugin)) {}
  void createFilters(http::FilterChainBuilder& builder) const override {
    builder.addFilter(std::make_shared<SandboxedFilter>(library_, key_, plugin_));
  }

private:
  std::shared_ptr<sandbox::SandboxedLibrary> library_;
  const std::string key_;
  const std::string plugin_;
};

}  // namespace

http::FilterFactoryPtr makeSandboxedFilterFactory(
    std::shared_ptr<sandbox::SandboxedLibrary> library, std::string key, std::string plugin_name) {
  return std::make_unique<SandboxedFilterFactory>(std::move(library), std::move(key),
                                                  std::move(plugin_name));
}

SandboxedFilter::SandboxedFilter(std::shared_ptr<sandbox::SandboxedLibrary> library,
                                 const std::string& key, const std::string& plugin_name)
    : library_(std::move(library)), key_(key), plugin_(plugin_name) {}

SandboxedFilter::~SandboxedFilter() = default;

// ---- events: what reaches this filter goes to the sandbox ----

http::FilterHeadersStatus SandboxedFilter::decodeHeaders(http::HeaderMap& headers,
                                                         bool end_stream) {
  request_.headers = &headers;
  request_.headers_only = end_stream;
  const bool fail_open = library_->options().on_failure == OnFailure::FailOpen;
  link_ = library_->pick(decoder_->dispatcher());
  if (link_ == nullptr) {
    CORRAL_LOG(warn, "[golang][{}] no sandbox process of {} is ready", plugin_, library_->id());
    if (fail_open) {
      library_->counters().fail_open.inc();
      mode_ = Mode::Bypass;
      return http::FilterHeadersStatus::Continue;
    }
    library_->counters().fail_closed.inc();
    mode_ = Mode::Done;
    own_reply_ = true;
    decoder_->sendLocalReply(503, "sandbox unavailable\r\n", "golang_sandbox_unavailable",
                             [](http::HeaderMap& h) { h.set("x-corral-sandbox", "unavailable"); });
    return http::FilterHeadersStatus::StopIteration;
  }
  id_ = link_->attach(*this);
  request_.retain = response_.retain = fail_open;
  decoder_->route();  // so the snapshot carries the route name
  std::string p;
  WireWriter w(p);
  w.u64(id_);
  w.bytes(key_);
  sandbox::writeInfo(w, decoder_->streamInfo(), true);
  w.headers(headers);
  w.u8(end_stream ? 1 : 0);
  link_->send(MessageType::StreamStart, std::move(p));
  request_.headers_held = true;
  request_.end_sent = end_stream;
  sent();
  return http::FilterHeadersStatus::StopIteration;
}

http::FilterDataStatus SandboxedFilter::decodeData(http::Buffer& data, bool end_stream) {
  if (mode_ == Mode::Bypass) {
    return http::FilterDataStatus::Continue;
  }
  if (mode_ == Mode::Sandboxed) {
    sendData(MessageType::DecodeData, request_, data, end_stream);
  }
  return http::FilterDataStatus::StopIterationNoBuffer;
}

http::FilterTrailersStatus SandboxedFilter::decodeTrailers(http::HeaderMap& trailers) {
  if (mode_ == Mode::Bypass) {
    return http::FilterTrailersStatus::Continue;
  }
  sendTrailers(MessageType::DecodeTrailers, request_, trailers);
  return http::FilterTrailersStatus::StopIteration;
}

http::FilterHeadersStatus SandboxedFilter::encodeHeaders(http::HeaderMap& headers,
                                                         bool end_stream) {
  // A local reply from a filter before this one reaches its encoder without the request ever
  // having reached it: there is no sandbox stream to give it to, and it passes unchanged.
  if (own_reply_ || mode_ != Mode::Sandboxed || link_ == nullptr) {
    own_reply_ = own_reply_ || link_ == nullptr;
    return http::FilterHeadersStatus::Continue;
  }
  response_.headers = &headers;
  response_.headers_only = end_stream;
  std::string p;
  WireWriter w(p);
  w.u64(id_);
  sandbox::writeInfo(w, encoder_->streamInfo(), false);
  w.headers(headers);
  w.u8(end_stream ? 1 : 0);
  link_->send(MessageType::EncodeHeaders, std::move(p));
  response_.headers_held = true;
  response_.end_sent = end_stream;
  sent();
  return http::FilterHeadersStatus::StopIteration;
}

http::FilterDataStatus SandboxedFilter::encodeData(http::Buffer& data, bool end_stream) {
  if (own_reply_ || mode_ == Mode::Bypass) {
    return http::FilterDataStatus::Continue;
  }
  if (mode_ == Mode::Sandboxed) {
    sendData(MessageType::EncodeData, response_, data, end_stream);
  }
  return http::FilterDataStatus::StopIterationNoBuffer;
}

http::FilterTrailersStatus SandboxedFilter::encodeTrailers(http::HeaderMap& trailers) {
  if (own_reply_ || mode_ == Mode::Bypass) {
    return http::FilterTrailersStatus::Continue;
  }
  sendTrailers(MessageType::EncodeTrailers, response_, trailers);
  return http::FilterTrailersStatus::StopIteration;
}

void SandboxedFilter::onDestroy() {
  detach();
  timer_.reset();
}

void SandboxedFilter::sendData(MessageType type, Direction& d, http::Buffer& data,
                               bool end_stream) {
  if (d.retain) {
    d.retained.append(data.view());
    if (d.retained.size() > decoder_->bufferLimit()) {
      d.retain = false;  // too much to replay: this stream can only fail closed now
      d.retained.clear();
      d.retained.shrink_to_fit();
      d.lost = true;
    }
  } else if (!data.empty()) {
    d.lost = true;
  }
  std::string_view rest = data.view();
  do {
    const std::string_view chunk = rest.substr(0, kChunk);
    rest.remove_prefix(chunk.size());
    std::string p;
    WireWriter w(p);
    w.u64(id_);
    w.u8(end_stream && rest.empty() ? 1 : 0);
    w.bytes(chunk);
    link_->send(type, std::move(p));
    sent();
  } while (!rest.empty());
  d.end_sent = end_stream;
  if (link_->queuedBytes() > kBacklogLimit) {
    // The process is not keeping up: stop this stream's source until the channel drains.
    (&d == &request_ ? backlog_read_disable_ : backlog_pause_) = true;
    link_->notifyDrained(id_);
    applyFlow();
  }
}

void SandboxedFilter::onLinkDrained() {
  backlog_read_disable_ = backlog_pause_ = false;
  applyFlow();
}

void SandboxedFilter::applyFlow() {
  const bool read_disable = sandbox_read_disable_ || backlog_read_disable_;
  if (read_disable != read_disabled_) {
    read_disabled_ = read_disable;
    decoder_->readDisableDownstream(read_disable);
  }
  const bool pause = sandbox_pause_ || backlog_pause_;
  if (pause != response_paused_ && encoder_ != nullptr) {
    response_paused_ = pause;
    pause ? encoder_->onEncoderFilterAboveWriteBufferHighWatermark()
          : encoder_->onEncoderFilterBelowWriteBufferLowWatermark();
  }
}

void SandboxedFilter::sendTrailers(MessageType type, Direction& d, http::HeaderMap& trailers) {
  d.trailers = &trailers;
  if (mode_ != Mode::Sandboxed) {
    return;  // failed closed: held until the stream ends
  }
  std::string p;
  WireWriter w(p);
  w.u64(id_);
  w.headers(trailers);
  link_->send(type, std::move(p));
  d.trailers_held = true;
  d.end_sent = true;
  sent();
}

void SandboxedFilter::sent() {
  ++events_sent_;
  if (!timer_) {
    timer_ = decoder_->dispatcher().createTimer([this] { onTimeout(); });
  }
  timer_->enable(library_->options().callback_timeout);
}

// ---- actions: what the plugin lets through comes back into the chain here ----

bool SandboxedFilter::onAction(MessageType type, WireReader& r) {
  if (mode_ != Mode::Sandboxed) {
    return true;  // this filter is out of the stream's way now
  }
  switch (type) {
  case MessageType::PassHeaders:
    return applyHeaders(r);
  case MessageType::PassData:
    return applyData(r);
  case MessageType::PassTrailers:
    return applyTrailers(r);
  case MessageType::LocalReply:
    return applyLocalReply(r);
  case MessageType::InfoUpdate:
    return applyInfo(r);
  case MessageType::ResetStream: {
    const std::string_view details = r.bytes();
    if (!r.done() || details.size() > kMaxDetails || !http::isValidFieldValue(details)) {
      return false;
    }
    mode_ = Mode::Done;
    decoder_->resetStream(details);
    return true;
  }
  case MessageType::ReadDisable: {
    const bool disable = r.boolean();
    if (!r.done()) {
      return false;
    }
    sandbox_read_disable_ = disable;
    applyFlow();
    return true;
  }
  case MessageType::PauseResponse: {
    const bool pause = r.boolean();
    if (!r.done()) {
      return false;
    }
    sandbox_pause_ = pause;
    applyFlow();
    return true;
  }
  case MessageType::Idle: {
    const uint64_t n = r.u64();
    if (!r.done() || n > events_sent_) {
      return false;
    }
    if (n == events_sent_ && timer_) {
      timer_->disable();
    }
    return true;
  }
  default:
    return false;
  }
}

bool SandboxedFilter::applyHeaders(WireReader& r) {
  const uint8_t dir = r.u8();
  const bool unchanged = r.boolean();
  http::HeaderMap h;
  if (!unchanged) {
    r.headers(h);
  }
  const bool end = r.boolean();
  if (!r.done() || dir > 1 || !validFields(h)) {
    return false;
  }
  Direction& d = dir == 0 ? request_ : response_;
  if (!d.headers_held || (end && !d.headers_only)) {
    return false;
  }
  d.headers_held = false;
  d.passed_any = true;
  if (!unchanged) {
    d.headers->entries() = std::move(h.entries());
  }
  if (d.headers_only) {
    d.passed_end = true;
    dir == 0 ? decoder_->continueDecoding() : encoder_->continueEncoding();
    return true;
  }
  http::Buffer none;  // lets the headers go on, nothing else
  dir == 0 ? decoder_->injectDecodedDataToFilterChain(none, false)
           : encoder_->injectEncodedDataToFilterChain(none, false);
  return true;
}

bool SandboxedFilter::applyData(WireReader& r) {
  const uint8_t dir = r.u8();
  const bool end = r.boolean();
  const std::string_view bytes = r.bytes();
  if (!r.done() || dir > 1) {
    return false;
  }
  Direction& d = dir == 0 ? request_ : response_;
  if (d.headers_only) {
    return true;  // body the plugin added to a headers-only message: Envoy drops it too
  }
  if (d.headers_held || d.passed_end) {
    return false;
  }
  http::Buffer b(bytes);
  d.passed_end = end;
  dir == 0 ? decoder_->injectDecodedDataToFilterChain(b, end)
           : encoder_->injectEncodedDataToFilterChain(b, end);
  return true;
}

bool SandboxedFilter::applyTrailers(WireReader& r) {
  const uint8_t dir = r.u8();
  http::HeaderMap t;
  r.headers(t);
  if (!r.done() || dir > 1 || !validFields(t)) {
    return false;
  }
  Direction& d = dir == 0 ? request_ : response_;
  if (!d.trailers_held || d.headers_held) {
    return false;
  }
  d.trailers_held = false;
  d.passed_any = d.passed_end = true;
  d.trailers->entries() = std::move(t.entries());
  dir == 0 ? decoder_->continueDecoding() : encoder_->continueEncoding();
  return true;
}

bool SandboxedFilter::applyLocalReply(WireReader& r) {
  const uint32_t status = r.u32();
  auto headers = std::make_shared<http::HeaderMap>();
  r.headers(*headers);
  const std::string_view body = r.bytes();
  const std::string_view details = r.bytes();
  if (!r.done() || status < 200 || status > 599 || !validFields(*headers) ||
      details.size() > kMaxDetails || !http::isValidFieldValue(details)) {
    return false;
  }
  for (const auto& e : headers->entries()) {
    if (!e.key.empty() && e.key[0] == ':') {
      return false;  // the status came apart; no other pseudo-header belongs in a reply
    }
  }
  mode_ = Mode::Done;
  if (response_.passed_any) {
    decoder_->resetStream(details);  // too late for a reply, as in the proxy's own chain
    return true;
  }
  own_reply_ = true;
  const size_t length = body.size();
  decoder_->sendLocalReply(status, body, details, [headers, status, length](http::HeaderMap& h) {
    // The reply as the sandbox's chain made it (the plugin's encode phase has seen it there);
    // its framing is ours: a length that does not match the body would split the connection.
    h.clear();
    h.add(":status", std::to_string(status));
    for (const auto& e : headers->entries()) {
      if (e.key != "content-length" && e.key != "transfer-encoding") {
        h.add(e.key, e.value);
      }
    }
    h.add("content-length", std::to_string(length));
  });
  return true;
}

bool SandboxedFilter::applyInfo(WireReader& r) {
  sandbox::InfoState s;
  sandbox::readInfoState(r, s);
  if (!r.done()) {
    return false;
  }
  if (s.override_host && (s.override_host->first.empty() || s.override_host->first.size() > 256 ||
                          !http::isValidFieldValue(s.override_host->first))) {
    return false;
  }
  http::StreamInfo& info = decoder_->streamInfo();
  for (auto& [k, v] : s.dynamic_metadata) {
    info.dynamic_metadata[k] = std::move(v);
  }
  for (auto& [k, v] : s.filter_state) {
    info.filter_state[k] = std::move(v);
  }
  if (s.override_host) {
    info.upstream_override_host = std::move(s.override_host);
  }
  info.drain_connection_upon_completion = info.drain_connection_upon_completion || s.drain;
  if (s.route_cache_clears != route_cache_clears_) {
    route_cache_clears_ = s.route_cache_clears;
    decoder_->clearRouteCache();
  }
  return true;
}

// ---- failures ----

void SandboxedFilter::onSandboxLost(const std::string& reason) {
  link_ = nullptr;  // the link is gone with the process
  fail(503, reason == sandbox::kProtocolViolation ? "protocol_violation" : "crashed", reason);
}

void SandboxedFilter::onTimeout() {
  library_->counters().timeout.inc();
  CORRAL_LOG(err, "[golang][{}] sandbox {}: no answer from Go within callback_timeout ({} ms)",
             plugin_, library_->id(), library_->options().callback_timeout.count());
  detach();
  fail(504, "timeout", "callback_timeout");
}

void SandboxedFilter::detach() {
  if (timer_) {
    timer_->disable();
  }
  if (sandbox::WorkerLink* link = std::exchange(link_, nullptr)) {
    std::string p;
    WireWriter w(p);
    w.u64(id_);
    sandbox::writeInfo(w, decoder_->streamInfo(), false);
    link->detach(id_);
    link->send(MessageType::StreamEnd, std::move(p), /*urgent=*/false);
  }
  sandbox_read_disable_ = backlog_read_disable_ = sandbox_pause_ = backlog_pause_ = false;
  applyFlow();
}

void SandboxedFilter::fail(uint32_t code, const std::string& reason, const std::string& detail) {
  detach();
  if (mode_ != Mode::Sandboxed) {
    return;
  }
  if (code != 504) {
    CORRAL_LOG(err, "[golang][{}] sandbox {} lost a stream: {}", plugin_, library_->id(), detail);
  }
  if (code != 504 && library_->options().on_failure == OnFailure::FailOpen && failOpen()) {
    library_->counters().fail_open.inc();
    return;
  }
  if (code != 504) {
    library_->counters().fail_closed.inc();
  }
  mode_ = Mode::Done;
  const std::string details = "golang_sandbox_" + reason;
  if (response_.passed_any) {
    decoder_->resetStream(details);  // the client has part of the response already
    return;
  }
  own_reply_ = true;
  decoder_->sendLocalReply(code, code == 504 ? "sandbox timeout\r\n" : "sandbox failure\r\n",
                           details,
                           [reason](http::HeaderMap& h) { h.set("x-corral-sandbox", reason); });
}

bool SandboxedFilter::failOpen() {
  for (const Direction* d : {&request_, &response_}) {
    if ((d->passed_any && !d->passed_end) || d->lost) {
      return false;  // part of it went through the plugin: no clean way around it now
    }
  }
  mode_ = Mode::Bypass;
  release(request_, true);
  if (mode_ == Mode::Bypass) {
    release(response_, false);
  }
  return true;
}

void SandboxedFilter::release(Direction& d, bool request) {
  if (!d.headers_held) {
    return;
  }
  d.headers_held = false;
  if (d.headers_only) {
    request ? decoder_->continueDecoding() : encoder_->continueEncoding();
    return;
  }
  http::Buffer body(d.retained);
  d.retained.clear();
  if (d.trailers_held) {
    d.trailers_held = false;
    request ? decoder_->injectDecodedDataToFilterChain(body, false)
            : encoder_->injectEncodedDataToFilterChain(body, false);
    request ? decoder_->continueDecoding() : encoder_->continueEncoding();
    return;
  }
  request ? decoder_->injectDecodedDataToFilterChain(body, d.end_sent)
          : encoder_->injectEncodedDataToFilterChain(body, d.end_sent);
}

}  // namespace corral::golang
