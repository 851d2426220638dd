#include "source/http/filter_manager.h"

#include "source/common/assert.h"

namespace corral::http {

namespace {
// Shared plumbing for both slot kinds.
template <class Base>
class SlotCallbacks : public Base {
public:
  SlotCallbacks(ActiveStream& stream, event::Dispatcher& d) : stream_(stream), dispatcher_(d) {}
  event::Dispatcher& dispatcher() override { return dispatcher_; }
  StreamInfo& streamInfo() override { return stream_.info(); }
  void sendLocalReply(uint32_t status, std::string_view body, std::string_view details,
                      const std::function<void(HeaderMap&)>& modify) override {
    stream_.sendLocalReply(status, body, details, modify);
  }

protected:
  ActiveStream& stream_;
  event::Dispatcher& dispatcher_;
};
}  // namespace

class ActiveStream::DecoderSlot : public Slot, public SlotCallbacks<StreamDecoderFilterCallbacks> {
public:
  DecoderSlot(ActiveStream& s, StreamDecoderFilter& f, size_t index)
      : SlotCallbacks(s, s.owner_.dispatcher()), filter_(f), index_(index) {}

  FilterHeadersStatus onHeaders(HeaderMap& h, bool end) override {
    return filter_.decodeHeaders(h, end);
  }
  FilterDataStatus onData(Buffer& d, bool end) override { return filter_.decodeData(d, end); }
  FilterTrailersStatus onTrailers(HeaderMap& t) override { return filter_.decodeTrailers(t); }

  std::optional<Route> route() override { return stream_.route(); }
  void clearRouteCache() override {
    stream_.cached_route_.reset();
    ++stream_.info_.route_cache_clears;
  }
  void resetStream(std::string_view details) override { stream_.resetStream(details); }
  void continueDecoding() override { stream_.continueIteration(stream_.decode_, index_); }
  Buffer* decodingBuffer() override { return buffered.empty() ? nullptr : &buffered; }
  void addDecodedData(Buffer& data, bool streaming) override {
    if (streaming) {
      stream_.iterateData(stream_.decode_, index_ + 1, data, false);
    } else {
      stream_.bufferFor(stream_.decode_, *this, data);
    }
  }
  void injectDecodedDataToFilterChain(Buffer& data, bool end_stream) override {
    stream_.injectData(stream_.decode_, index_, data, end_stream);
  }
  size_t bufferLimit() const override { return stream_.config_.bufferLimit(); }
  HeaderMap* requestHeaders() override { return stream_.request_headers_.get(); }
  HeaderMap* requestTrailers() override { return stream_.request_trailers_.get(); }
  void encodeHeaders(HeaderMapPtr headers, bool end_stream) override {
    stream_.encodeHeaders(std::move(headers), end_stream);
  }
  void encodeData(Buffer& data, bool end_stream) override { stream_.encodeData(data, end_stream); }
  void encodeTrailers(HeaderMapPtr trailers) override {
    stream_.encodeTrailers(std::move(trailers));
  }
  void readDisableDownstream(bool disable) override { stream_.owner_.readDisable(disable); }
  size_t downstreamBufferedBytes() const override { return stream_.owner_.bufferedWriteBytes(); }
  void onDownstreamDrained(std::function<void()> cb) override {
    stream_.owner_.onWriteDrained(std::move(cb));
  }
  void setResponsePauseCallback(std::function<void(bool)> cb) override {
    stream_.response_pause_cb_ = std::move(cb);
  }

  StreamDecoderFilter& filter_;
  size_t index_;
};

class ActiveStream::EncoderSlot : public Slot, public SlotCallbacks<StreamEncoderFilterCallbacks> {
public:
  EncoderSlot(ActiveStream& s, StreamEncoderFilter& f, size_t index)
      : SlotCallbacks(s, s.owner_.dispatcher()), filter_(f), index_(index) {}

  FilterHeadersStatus onHeaders(HeaderMap& h, bool end) override {
    return filter_.encodeHeaders(h, end);
  }
  FilterDataStatus onData(Buffer& d, bool end) override { return filter_.encodeData(d, end); }
  FilterTrailersStatus onTrailers(HeaderMap& t) override { return filter_.encodeTrailers(t); }

  std::optional<Route> route() override { return stream_.route(); }
  void clearRouteCache() override {
    stream_.cached_route_.reset();
    ++stream_.info_.route_cache_clears;
  }
  void resetStream(std::string_view details) override { stream_.resetStream(details); }
  void continueEncoding() override { stream_.continueIteration(stream_.encode_, index_); }
  Buffer* encodingBuffer() override { return buffered.empty() ? nullptr : &buffered; }
  void addEncodedData(Buffer& data, bool streaming) override {
    if (streaming) {
      stream_.iterateData(stream_.encode_, index_ + 1, data, false);
    } else {
      stream_.bufferFor(stream_.encode_, *this, data);
    }
  }
  void injectEncodedDataToFilterChain(Buffer& data, bool end_stream) override {
    stream_.injectData(stream_.encode_, index_, data, end_stream);
  }
  size_t bufferLimit() const override { return stream_.config_.bufferLimit(); }
  void onEncoderFilterAboveWriteBufferHighWatermark() override { stream_.pauseResponse(true); }
  void onEncoderFilterBelowWriteBufferLowWatermark() override { stream_.pauseResponse(false); }
  HeaderMap* responseHeaders() override { return stream_.response_headers_.get(); }
  HeaderMap* responseTrailers() override { return stream_.response_trailers_.get(); }

  StreamEncoderFilter& filter_;
  size_t index_;
  bool dual_ = false;  // also in the decoder chain
};

class FilterChainBuilderImpl : public FilterChainBuilder {
public:
  explicit FilterChainBuilderImpl(ActiveStream& s) : s_(s) {}
  void addDecoderFilter(StreamDecoderFilterSharedPtr f) override {
    auto slot = std::make_unique<ActiveStream::DecoderSlot>(s_, *f, s_.decoders_.size());
    f->setDecoderFilterCallbacks(*slot);
    s_.decode_.slots.push_back(slot.get());
    s_.decoders_.push_back(std::move(slot));
    s_.filter_owners_.push_back(std::move(f));
  }
  void addEncoderFilter(StreamEncoderFilterSharedPtr f) override {
    addEncoder(std::move(f), false);
  }
  void addFilter(std::shared_ptr<StreamFilter> f) override {
    addDecoderFilter(f);
    addEncoder(f, true);
  }
  void finish() {
    for (auto& [f, dual] : encoders_) {
      auto slot = std::make_unique<ActiveStream::EncoderSlot>(s_, *f, s_.encoders_.size());
      slot->dual_ = dual;
      f->setEncoderFilterCallbacks(*slot);
      s_.encode_.slots.push_back(slot.get());
      s_.encoders_.push_back(std::move(slot));
    }
  }

private:
  void addEncoder(StreamEncoderFilterSharedPtr f, bool dual) {
    // Encoders run in reverse config order: insert at the front.
    encoders_.insert(encoders_.begin(), {f, dual});
    s_.filter_owners_.push_back(std::move(f));
  }

  ActiveStream& s_;
  absl::InlinedVector<std::pair<StreamEncoderFilterSharedPtr, bool>, 4> encoders_;
};

ActiveStream::ActiveStream(StreamOwner& owner, const ConnectionManagerConfig& config,
                           StreamInfo info)
    : owner_(owner), config_(config), info_(std::move(info)) {
  FilterChainBuilderImpl builder(*this);
  for (const auto& factory : config_.filters()) {
    factory->createFilters(builder);
  }
  builder.finish();
  config_.stats().downstream_rq_total.inc();
  config_.stats().downstream_rq_active.inc();
  armTimers();
}

ActiveStream::~ActiveStream() {
  destroyFilters();
  config_.stats().downstream_rq_active.dec();
}

void ActiveStream::armTimers() {
  const auto& hcm = config_.hcm();
  if (hcm.request_timeout.count() > 0) {
    request_timer_.emplace(owner_.dispatcher(), [this] {
      config_.stats().downstream_rq_timeout.inc();
      sendLocalReply(408, "request timeout", "request_overall_timeout");
    });
    request_timer_->enable(hcm.request_timeout);
  }
  if (hcm.stream_idle_timeout.count() > 0) {
    last_activity_ = owner_.dispatcher().cachedNowMs();
    idle_timer_.emplace(owner_.dispatcher(), [this] { onIdleTimer(); });
    idle_timer_->enable(hcm.stream_idle_timeout);
  }
}

void ActiveStream::onIdleTimer() {
  const auto timeout = config_.hcm().stream_idle_timeout;
  const auto idle = owner_.dispatcher().cachedNowMs() - last_activity_;
  // A wall-clock step backwards looks like recent activity: the timeout is re-armed, never lost.
  if (idle < timeout && idle.count() >= 0) {
    idle_timer_->enable(timeout - idle);
    return;
  }
  if (idle.count() < 0) {
    last_activity_ = owner_.dispatcher().cachedNowMs();
    idle_timer_->enable(timeout);
    return;
  }
  config_.stats().downstream_rq_idle_timeout.inc();
  info_.addResponseFlag("SI");
  if (response_headers_written_) {
    resetStream("stream_idle_timeout");
  } else {
    sendLocalReply(408, "stream timeout", "stream_idle_timeout");
  }
}

void ActiveStream::onActivity() {
  if (idle_timer_) {
    last_activity_ = owner_.dispatcher().cachedNowMs();
  }
}

void ActiveStream::destroyFilters() {
  if (filters_destroyed_) {
    return;
  }
  filters_destroyed_ = true;
  decode_.aborted = true;
  encode_.aborted = true;
  request_timer_.reset();
  idle_timer_.reset();
  for (const auto& log : config_.accessLogs()) {
    log->log(request_headers_.get(), response_headers_.get(), info_);
  }
  for (auto& d : decoders_) {
    d->filter_.onDestroy();
  }
  // A dual filter is both decoder and encoder: it was told once above.
  for (auto& e : encoders_) {
    if (!e->dual_) {
      e->filter_.onDestroy();
    }
  }
}

std::optional<Route> ActiveStream::route() {
  if (!cached_route_) {
    cached_route_ = request_headers_ ? config_.routes().route(*request_headers_) : std::nullopt;
    if (*cached_route_) {
      info_.route_name = (*cached_route_)->entry->name;
    }
  }
  return *cached_route_;
}

// ---- decoding (from the codec) ----

void ActiveStream::decodeHeaders(HeaderMapPtr headers, bool end_stream) {
  request_headers_ = std::move(headers);
  decode_.headers_end_stream = end_stream;
  decode_.complete = end_stream;
  if (request_timer_ && end_stream) {
    request_timer_.reset();
  }
  iterateHeaders(decode_, 0, end_stream);
}

void ActiveStream::decodeData(std::string_view data, bool end_stream) {
  info_.bytes_received += data.size();
  if (end_stream) {
    decode_.complete = true;
    request_timer_.reset();
  }
  if (decode_.aborted) {
    return;
  }
  Buffer buffer(data);
  iterateData(decode_, 0, buffer, end_stream);
}

void ActiveStream::decodeTrailers(HeaderMapPtr trailers) {
  request_trailers_ = std::move(trailers);
  decode_.complete = true;
  request_timer_.reset();
  if (!decode_.aborted) {
    iterateTrailers(decode_, 0);
  }
}

void ActiveStream::decodeComplete() {
  const bool had_end = decode_.complete;
  decode_.complete = true;
  request_timer_.reset();
  if (had_end || decode_.aborted) {
    return;  // headers-only request, or trailers already ended it
  }
  Buffer empty;
  iterateData(decode_, 0, empty, true);
}

// ---- encoding (from the terminal filter) ----

void ActiveStream::encodeHeaders(HeaderMapPtr headers, bool end_stream) {
  if (encode_.aborted || response_headers_) {
    return;
  }
  response_headers_ = std::move(headers);
  info_.response_code = statusCode(*response_headers_);  // encoder filters may ask for it
  encode_.headers_end_stream = end_stream;
  encode_.complete = end_stream;
  iterateHeaders(encode_, 0, end_stream);
}

void ActiveStream::encodeData(Buffer& data, bool end_stream) {
  if (encode_.aborted) {
    return;
  }
  encode_.complete = end_stream;
  iterateData(encode_, 0, data, end_stream);
}

void ActiveStream::encodeTrailers(HeaderMapPtr trailers) {
  if (encode_.aborted) {
    return;
  }
  response_trailers_ = std::move(trailers);
  encode_.complete = true;
  iterateTrailers(encode_, 0);
}

uint32_t ActiveStream::statusCode(const HeaderMap& headers) {
  uint32_t code = 0;
  for (char c : headers.getView(":status")) {
    code = code * 10 + static_cast<uint32_t>(c - '0');
  }
  return code;
}

// ---- the iteration engine, shared by both directions ----

void ActiveStream::iterateHeaders(Direction& d, size_t from, bool end_stream) {
  for (size_t i = from; i < d.slots.size(); ++i) {
    const FilterHeadersStatus s = d.slots[i]->onHeaders(**d.headers, end_stream);
    if (d.aborted) {
      return;
    }
    if (s != FilterHeadersStatus::Continue) {
      d.headers_stop = i;
      d.headers_stop_all = s == FilterHeadersStatus::StopAllIterationAndBuffer;
      return;
    }
  }
  sinkHeaders(d, end_stream);
}

bool ActiveStream::releaseHeldHeaders(Direction& d, size_t i) {
  if (d.headers_stop == i) {
    d.headers_stop = kNone;
    iterateHeaders(d, i + 1, d.headers_end_stream);
  }
  return !d.aborted;
}

void ActiveStream::iterateData(Direction& d, size_t from, Buffer& data, bool end_stream) {
  for (size_t i = from; i < d.slots.size(); ++i) {
    Slot& slot = *d.slots[i];
    if (d.headers_stop == i && d.headers_stop_all) {
      slot.end_held = slot.end_held || end_stream;
      bufferFor(d, slot, data);  // held until the filter continues
      return;
    }
    const FilterDataStatus s = slot.onData(data, end_stream);
    if (d.aborted) {
      return;
    }
    if (s != FilterDataStatus::Continue) {
      slot.end_held = slot.end_held || end_stream;
      if (s == FilterDataStatus::StopIterationAndBuffer) {
        bufferFor(d, slot, data);
      }
      return;
    }
    // Continue from the body also releases the headers this filter held.
    if (!releaseHeldHeaders(d, i)) {
      return;
    }
    slot.end_held = false;
    if (!slot.buffered.empty()) {
      slot.buffered.add(data);
      data.clear();
      data.move(slot.buffered);
    }
  }
  sinkData(d, data, end_stream);
}

void ActiveStream::iterateTrailers(Direction& d, size_t from) {
  for (size_t i = from; i < d.slots.size(); ++i) {
    Slot& slot = *d.slots[i];
    if (d.headers_stop == i && d.headers_stop_all) {
      slot.trailers_held = true;
      return;
    }
    const FilterTrailersStatus s = slot.onTrailers(**d.trailers);
    if (d.aborted) {
      return;
    }
    if (s == FilterTrailersStatus::StopIteration) {
      slot.trailers_held = true;
      return;
    }
    // Continue: whatever this filter still held goes on first.
    if (!releaseHeldHeaders(d, i)) {
      return;
    }
    slot.end_held = false;
    if (!slot.buffered.empty()) {
      Buffer pending;
      pending.move(slot.buffered);
      iterateData(d, i + 1, pending, false);
      if (d.aborted) {
        return;
      }
    }
  }
  sinkTrailers(d);
}

void ActiveStream::continueIteration(Direction& d, size_t k) {
  if (d.aborted) {
    return;
  }
  Slot& slot = *d.slots[k];
  if (!releaseHeldHeaders(d, k)) {
    return;
  }
  if (!slot.buffered.empty() || slot.end_held) {
    const bool end = slot.end_held;
    slot.end_held = false;
    Buffer pending;
    pending.move(slot.buffered);
    iterateData(d, k + 1, pending, end);
    if (d.aborted) {
      return;
    }
  }
  if (slot.trailers_held) {
    slot.trailers_held = false;
    iterateTrailers(d, k + 1);
  }
}

void ActiveStream::pauseResponse(bool pause) {
  const uint32_t before = response_pauses_;
  response_pauses_ =
      pause ? response_pauses_ + 1 : (response_pauses_ > 0 ? response_pauses_ - 1 : 0);
  if ((before == 0) != (response_pauses_ == 0) && response_pause_cb_) {
    response_pause_cb_(response_pauses_ != 0);
  }
}

void ActiveStream::injectData(Direction& d, size_t k, Buffer& data, bool end_stream) {
  if (d.aborted || !releaseHeldHeaders(d, k)) {
    return;
  }
  // The filter owns the end of the body now: it is passing it on itself.
  d.slots[k]->end_held = false;
  if (data.empty() && !end_stream) {
    return;  // nothing to pass: only the held headers had to go on
  }
  iterateData(d, k + 1, data, end_stream);
}

void ActiveStream::bufferFor(Direction& d, Slot& slot, Buffer& data) {
  slot.buffered.move(data);
  if (slot.buffered.length() <= config_.bufferLimit()) {
    return;
  }
  if (d.decode) {
    config_.stats().downstream_rq_too_large.inc();
    sendLocalReply(413, "Payload Too Large", "request_payload_too_large");
  } else {
    sendLocalReply(500, "Internal Server Error", "response_payload_too_large");
  }
}

void ActiveStream::sinkHeaders(Direction& d, bool end_stream) {
  if (d.decode) {
    return;  // past the terminal filter: nothing further on the request side
  }
  response_headers_written_ = true;
  const uint32_t code = statusCode(*response_headers_);
  info_.response_code = code;
  if (code >= 100 && code < 600) {
    config_.stats().downstream_rq_xx[code / 100]->inc();
  }
  owner_.writeHeaders(*response_headers_, end_stream);
  if (end_stream) {
    response_complete_ = true;
    owner_.onResponseComplete();
  }
}

void ActiveStream::sinkData(Direction& d, Buffer& data, bool end_stream) {
  if (d.decode) {
    return;
  }
  info_.bytes_sent += data.length();
  owner_.writeData(data.view(), end_stream);
  if (end_stream) {
    response_complete_ = true;
    owner_.onResponseComplete();
  }
}

void ActiveStream::sinkTrailers(Direction& d) {
  if (d.decode) {
    return;
  }
  owner_.writeTrailers(*response_trailers_);
  response_complete_ = true;
  owner_.onResponseComplete();
}

void ActiveStream::sendLocalReply(uint32_t status, std::string_view body, std::string_view details,
                                  const std::function<void(HeaderMap&)>& modify_headers) {
  if (response_complete_ || local_reply_sent_ || filters_destroyed_) {
    return;
  }
  info_.response_code_details = std::string(details);
  if (details != "direct_response") {
    info_.addResponseFlag("LR");
  }
  if (response_headers_written_) {
    // Too late for a response: the client has part of another one.
    resetStream(details);
    return;
  }
  local_reply_sent_ = true;
  decode_.aborted = true;
  auto headers = std::make_unique<HeaderMap>();
  headers->add(":status", std::to_string(status));
  if (!body.empty()) {
    headers->add("content-type", "text/plain");
  }
  headers->add("content-length", std::to_string(body.size()));
  if (status >= 400 && details != "direct_response") {
    headers->add("x-corral-error", details);
  }
  if (modify_headers) {
    modify_headers(*headers);
  }
  const bool in_encode = response_headers_ != nullptr;
  if (in_encode) {
    // A local reply while the response passes the encoders: write it as it is.
    encode_.aborted = true;
    response_headers_ = std::move(headers);
    Direction direct{false, {}, &response_headers_, &response_trailers_};
    sinkHeaders(direct, body.empty());
    if (!body.empty()) {
      Buffer b(body);
      sinkData(direct, b, true);
    }
    return;
  }
  response_headers_ = std::move(headers);
  info_.response_code = status;
  encode_.headers_end_stream = body.empty();
  encode_.complete = true;
  iterateHeaders(encode_, 0, body.empty());
  if (!body.empty() && !encode_.aborted) {
    Buffer b(body);
    iterateData(encode_, 0, b, true);
  }
}

void ActiveStream::resetStream(std::string_view details) {
  if (filters_destroyed_) {
    return;
  }
  if (info_.response_code_details.empty()) {
    info_.response_code_details = std::string(details);
  }
  decode_.aborted = true;
  encode_.aborted = true;
  owner_.onStreamReset(details);
}

}  // namespace corral::http
