#pragma once
// One HTTP stream (request/response exchange) and its filter chain: Envoy's ActiveStream and
// FilterManager. Events from the codec enter the decoder filters in order; the terminal filter
// (router) produces the response, which leaves through the encoder filters in reverse order and
// then goes to the connection (StreamOwner) for the wire.
//
// Iteration semantics (Envoy's):
// - StopIteration on headers: later filters wait for the headers; this filter still gets the
//   body and trailers, and a Continue from those callbacks (or continue*()) sends the headers on,
//   then the data.
// - StopAllIterationAndBuffer on headers: the manager buffers the body and holds the trailers for
//   this filter until it calls continue*().
// - StopIterationAndBuffer on data buffers that chunk for the filter; it sees later chunks too
//   and decides when to Continue (the whole buffer then moves on). StopIterationNoBuffer drops
//   the chunk from iteration (the filter keeps what it wants).
// - Buffering past the limit answers 413 (request) or 500 (response).
// Single-threaded: the stream lives on its connection's worker thread.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "source/event/dispatcher.h"
#include "source/http/conn_manager_config.h"
#include "source/http/filter.h"

namespace corral::http {

// What a stream needs from its downstream connection.
class StreamOwner {
public:
  virtual ~StreamOwner() = default;
  virtual event::Dispatcher& dispatcher() = 0;
  virtual void writeHeaders(HeaderMap& headers, bool end_stream) = 0;
  virtual void writeData(std::string_view data, bool end_stream) = 0;
  virtual void writeTrailers(const HeaderMap& trailers) = 0;
  virtual void readDisable(bool disable) = 0;
  virtual size_t bufferedWriteBytes() const = 0;
  virtual void onWriteDrained(std::function<void()> cb) = 0;
  // The response has been written in full.
  virtual void onResponseComplete() = 0;
  // The stream cannot go on: close the connection.
  virtual void onStreamReset(std::string_view details) = 0;
};

class ActiveStream : public event::DeferredDeletable {
public:
  ActiveStream(StreamOwner& owner, const ConnectionManagerConfig& config, StreamInfo info);
  ~ActiveStream() override;

  // From the codec.
  void decodeHeaders(HeaderMapPtr headers, bool end_stream);
  // `end_stream`: this chunk ends the request (instead of a separate decodeComplete()).
  void decodeData(std::string_view data, bool end_stream = false);
  void decodeTrailers(HeaderMapPtr trailers);
  void decodeComplete();

  // Local replies from the connection manager itself (timeouts, codec errors after headers).
  void sendLocalReply(uint32_t status, std::string_view body, std::string_view details,
                      const std::function<void(HeaderMap&)>& modify_headers = {});
  // Tells filters the stream is over (access log first); safe to call once.
  void destroyFilters();
  // Envoy's response flags etc. live here.
  StreamInfo& info() { return info_; }
  bool requestComplete() const { return decode_.complete; }
  bool responseStarted() const { return response_headers_written_; }
  const HeaderMap* requestHeaders() const { return request_headers_.get(); }
  const HeaderMap* responseHeaders() const { return response_headers_.get(); }
  // Called by the connection on any traffic of this stream (restarts the idle timer).
  void onActivity();

private:
  static constexpr size_t kNone = static_cast<size_t>(-1);

  // A filter in one direction, with what the manager holds for it while it is stopped.
  class Slot {
  public:
    virtual ~Slot() = default;
    virtual FilterHeadersStatus onHeaders(HeaderMap& headers, bool end_stream) = 0;
    virtual FilterDataStatus onData(Buffer& data, bool end_stream) = 0;
    virtual FilterTrailersStatus onTrailers(HeaderMap& trailers) = 0;
    Buffer buffered;
    bool end_held = false;       // the end of the body stopped here and has not moved on
    bool trailers_held = false;  // the trailers stopped here and have not moved on
  };
  class DecoderSlot;
  class EncoderSlot;

  // One direction's iteration state.
  struct Direction {
    bool decode;
    absl::InlinedVector<Slot*, 4> slots;
    HeaderMapPtr* headers;
    HeaderMapPtr* trailers;
    size_t headers_stop = kNone;    // the filter where the headers stopped
    bool headers_stop_all = false;  // ... with StopAllIterationAndBuffer
    bool headers_end_stream = false;
    bool complete = false;  // the source has delivered its end
    bool aborted = false;   // no more iteration (local reply, reset, done)
  };

  static uint32_t statusCode(const HeaderMap& headers);
  void iterateHeaders(Direction& d, size_t from, bool end_stream);
  void iterateData(Direction& d, size_t from, Buffer& data, bool end_stream);
  void iterateTrailers(Direction& d, size_t from);
  void continueIteration(Direction& d, size_t k);
  // An encoder filter's watermark: pause or resume the response source (the terminal filter).
  void pauseResponse(bool pause);
  // Filter k hands `data` to the filters after it.
  void injectData(Direction& d, size_t k, Buffer& data, bool end_stream);
  // If filter i holds the headers, sends them on. False if the stream was aborted meanwhile.
  bool releaseHeldHeaders(Direction& d, size_t i);
  void bufferFor(Direction& d, Slot& slot, Buffer& data);
  // Past the last filter.
  void sinkHeaders(Direction& d, bool end_stream);
  void sinkData(Direction& d, Buffer& data, bool end_stream);
  void sinkTrailers(Direction& d);

  // Response entry from the terminal filter.
  void encodeHeaders(HeaderMapPtr headers, bool end_stream);
  void encodeData(Buffer& data, bool end_stream);
  void encodeTrailers(HeaderMapPtr trailers);
  void resetStream(std::string_view details);
  std::optional<Route> route();
  void armTimers();
  void onIdleTimer();

  StreamOwner& owner_;
  const ConnectionManagerConfig& config_;
  StreamInfo info_;
  HeaderMapPtr request_headers_;
  HeaderMapPtr request_trailers_;
  HeaderMapPtr response_headers_;
  HeaderMapPtr response_trailers_;
  absl::InlinedVector<std::unique_ptr<DecoderSlot>, 4> decoders_;
  absl::InlinedVector<std::unique_ptr<EncoderSlot>, 4> encoders_;
  absl::InlinedVector<std::shared_ptr<void>, 4> filter_owners_;  // keeps each filter alive
  Direction decode_{true, {}, &request_headers_, &request_trailers_};
  Direction encode_{false, {}, &response_headers_, &response_trailers_};
  std::optional<std::optional<Route>> cached_route_;
  std::function<void(bool)> response_pause_cb_;
  uint32_t response_pauses_ = 0;  // encoder filters above their watermark
  bool response_headers_written_ = false;
  bool response_complete_ = false;
  bool local_reply_sent_ = false;
  bool filters_destroyed_ = false;
  std::optional<event::Timer> request_timer_;  // in place: no allocation per request
  // Armed once; on firing it checks the last activity and re-arms for the rest, so traffic
  // costs a read of the loop's cached clock instead of a timer update.
  std::optional<event::Timer> idle_timer_;
  std::chrono::milliseconds last_activity_{0};

  friend class FilterChainBuilderImpl;
};

}  // namespace corral::http
