#pragma once
// One direction (decode or encode) of a Golang filter stream: Envoy's ProcessorState. It is the
// processState struct the Go SDK holds a pointer to (Go reads is_encoding and state), plus what
// the host keeps for that direction: the header/trailer maps Go may read and change, the data
// chunks handed to Go (doDataList: Go refers to them by handle), and the body buffered while Go
// is busy or asked for the whole body.
//
// State machine (Envoy's, states numbered as in processState.state):
//   WaitingHeader -> ProcessingHeader -> (Continue) WaitingData | Done
//                                        (StopAndBuffer) WaitingAllData
//   WaitingData | WaitingAllData -> ProcessingData -> (Continue) WaitingData | Done ...
//   ... -> ProcessingTrailer -> (Continue) Done
// "Processing*" means Go owns the phase: it may call back (from any goroutine) until it returns
// or calls Continue/SendLocalReply.
//
// Thread-safety: state transitions happen on the stream's worker thread; Go reads `state` from
// other threads while Processing* (as in Envoy).

#include <memory>

#include "absl/container/inlined_vector.h"

#include "api.h"
#include "source/http/buffer.h"
#include "source/http/header_map.h"

namespace corral::golang {

enum class GolangStatus : uint64_t {
  Running = 0,
  LocalReply = 1,
  Continue = 2,
  StopAndBuffer = 3,
  StopAndBufferWatermark = 4,
  StopNoBuffer = 5,
};

enum class FilterState : int {
  WaitingHeader = 0,
  ProcessingHeader = 1,
  WaitingData = 2,
  WaitingAllData = 3,
  ProcessingData = 4,
  WaitingTrailer = 5,
  ProcessingTrailer = 6,
  Done = 7,
};

class ProcessorState : public processState {
public:
  ProcessorState(httpRequest* request, bool encoding) {
    req = request;
    is_encoding = encoding ? 1 : 0;
    state = static_cast<int>(FilterState::WaitingHeader);
  }

  FilterState filterState() const { return static_cast<FilterState>(state); }
  void setFilterState(FilterState s) { state = static_cast<int>(s); }
  bool encoding() const { return is_encoding != 0; }
  // Go owns this phase (or is running an access-log / stream-complete callback).
  bool isProcessingInGo() const {
    const auto s = filterState();
    return s == FilterState::ProcessingHeader || s == FilterState::ProcessingData ||
           s == FilterState::ProcessingTrailer || req->is_golang_processing_log != 0;
  }

  void processHeader(bool end_stream) {
    setFilterState(FilterState::ProcessingHeader);
    do_end_stream_ = end_stream;
  }
  void processData(bool end_stream) {
    setFilterState(FilterState::ProcessingData);
    do_end_stream_ = end_stream;
  }
  void processTrailer() {
    setFilterState(FilterState::ProcessingTrailer);
    do_end_stream_ = true;
  }

  // Applies the status Go returned (or passed to Continue) for the current phase. True when the
  // phase is done and iteration may go on.
  bool handleGolangStatus(GolangStatus status);

  // The end of this direction's stream has been seen (by the filter, not necessarily by Go).
  void setEndStream(bool end) { end_stream_ = end; }
  bool endStream() const { return end_stream_; }
  bool isStreamEnd() const { return end_stream_ || trailers != nullptr; }
  bool isProcessingEndStream() const { return do_end_stream_; }

  // The body held while Go is busy or wants all of it.
  http::Buffer& bufferData() { return data_buffer_; }
  bool isBufferDataEmpty() const { return data_buffer_.empty(); }

  // Chunks handed to Go by handle (the handle is the Buffer's address).
  http::Buffer& pushDoData(http::Buffer& data);
  bool hasDoData(const http::Buffer* handle) const;
  void moveOutDoData(http::Buffer& out);
  bool doDataEmpty() const { return do_data_.empty(); }
  void clearDoData() { do_data_.clear(); }

  http::HeaderMap* headers = nullptr;
  http::HeaderMap* trailers = nullptr;
  bool watermark_requested = false;

private:
  bool handleHeaderStatus(GolangStatus status);
  bool handleDataStatus(GolangStatus status);
  bool handleTrailerStatus(GolangStatus status);

  // Not a std::deque: libstdc++'s allocates even when empty, and this lives in every request.
  absl::InlinedVector<std::unique_ptr<http::Buffer>, 2> do_data_;
  http::Buffer data_buffer_;
  bool end_stream_ = false;
  bool do_end_stream_ = false;
};

}  // namespace corral::golang
