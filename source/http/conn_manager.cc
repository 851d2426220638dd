#include "source/http/conn_manager.h"

#include <random>

#include <fmt/format.h>

#include "source/common/assert.h"

namespace corral::http {

namespace {
constexpr auto kDelayedClose = std::chrono::milliseconds(1000);  // Envoy's delayed_close_timeout

}  // namespace

std::string generateRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t a = rng();
  uint64_t b = rng();
  // 8-4-4-4-12 hex digits; version 4, variant 10xx, as Envoy generates.
  a = (a & ~0xf000ULL) | 0x4000ULL;
  b = (b & ~(0xc000ULL << 48)) | (0x8000ULL << 48);
  std::string out(36, '-');
  size_t pos = 0;
  auto put = [&](uint64_t v, int digits) {
    for (int d = digits - 1; d >= 0; --d) {
      out[pos++] = kHex[(v >> (4 * d)) & 0xf];
    }
  };
  put(a >> 32, 8);
  ++pos;
  put((a >> 16) & 0xffff, 4);
  ++pos;
  put(a & 0xffff, 4);
  ++pos;
  put(b >> 48, 4);
  ++pos;
  put(b & 0xffffffffffffULL, 12);
  return out;
}

ServerConnection::ServerConnection(ConnectionOwner& owner, ConnectionManagerConfigSharedPtr config,
                                   int fd, std::string remote_address, std::string local_address)
    : owner_(owner),
      config_(std::move(config)),
      parser_(Parser::Type::Request, *this,
              ParserLimits{config_->hcm().max_request_headers_kb * 1024ULL,
                           config_->hcm().max_headers_count}),
      socket_(std::make_unique<event::StreamSocket>(owner.dispatcher(), fd, *this)),
      remote_address_(std::move(remote_address)),
      local_address_(std::move(local_address)) {
  config_->stats().downstream_cx_total.inc();
  config_->stats().downstream_cx_active.inc();
  armIdleTimer();
}

ServerConnection::~ServerConnection() {
  stream_.reset();
  socket_.reset();
  config_->stats().downstream_cx_active.dec();
  config_->stats().downstream_cx_destroy.inc();
}

void ServerConnection::armIdleTimer() {
  // Armed once and checked when it fires, so requests cost no timer updates: it re-arms while a
  // stream is active or for what is left since the connection last became idle.
  idle_since_ = owner_.dispatcher().cachedNowMs();
  const auto timeout = config_->hcm().idle_timeout;
  if (timeout.count() == 0 || idle_timer_) {
    return;
  }
  idle_timer_ = owner_.dispatcher().createTimer([this] { onIdleTimer(); });
  idle_timer_->enable(timeout);
}

void ServerConnection::onIdleTimer() {
  const auto timeout = config_->hcm().idle_timeout;
  const auto idle = owner_.dispatcher().cachedNowMs() - idle_since_;
  if (stream_ || idle.count() < 0) {
    idle_since_ = owner_.dispatcher().cachedNowMs();
    idle_timer_->enable(timeout);
    return;
  }
  if (idle < timeout) {
    idle_timer_->enable(timeout - idle);
    return;
  }
  config_->stats().downstream_cx_idle_timeout.inc();
  close();
}

void ServerConnection::onWriteDrained() {
  if (drained_cb_) {
    auto cb = std::move(drained_cb_);
    drained_cb_ = nullptr;
    cb();
  }
}

void ServerConnection::onClose(event::StreamSocket::CloseReason) {
  if (stream_ && !closing_) {
    config_->stats().downstream_rq_rx_reset.inc();
    stream_->info().addResponseFlag("DC");
    if (!stream_->info().response_code) {
      stream_->info().response_code_details = "downstream_remote_disconnect";
    }
  }
  close();
}

size_t ServerConnection::onData(std::string_view data) {
  if (closing_ || closed_) {
    // Lingering close: what the client still sends is read and dropped, so that closing does
    // not reset the connection before the client has read our last response.
    return data.size();
  }
  size_t consumed = 0;
  while (!closed_ && !closing_ && consumed < data.size()) {
    if (parser_.paused()) {
      if (stream_) {
        // A complete request is being answered; pipelined bytes wait.
        socket_->readDisable(true);
        break;
      }
      parser_.resume();
    }
    if (stream_) {
      stream_->onActivity();
    } else {
      idle_since_ = owner_.dispatcher().cachedNowMs();  // bytes of a request-to-be
    }
    const auto result = parser_.feed(data.data() + consumed, data.size() - consumed);
    if (closed_) {
      return data.size();
    }
    consumed += result.consumed;
    if (result.error) {
      onCodecError(*result.error);
      return data.size();
    }
    if (result.consumed == 0 && !parser_.paused()) {
      break;
    }
  }
  return closing_ ? data.size() : consumed;
}

void ServerConnection::onHeaders(HeaderMapPtr headers, bool end_stream) {
  request_minor_ = parser_.httpMinor();
  keep_alive_ = parser_.keepAlive();
  head_request_ = headers->getView(":method") == "HEAD";
  chunked_response_ = false;

  StreamInfo info;
  info.start_time = std::chrono::system_clock::now();
  info.start_steady = std::chrono::steady_clock::now();
  info.downstream_remote_address = remote_address_;
  info.downstream_local_address = local_address_;
  info.protocol_minor = request_minor_;

  // Hop-by-hop fields, including those the Connection header names, stop here.
  HeaderMap& h = *headers;
  removeHopByHopHeaders(h, /*keep_te_trailers=*/true);

  // Expect: 100-continue is answered here, as Envoy does by default.
  if (const std::string* expect = h.get("expect");
      expect && equalsIgnoreCase(*expect, "100-continue")) {
    h.remove("expect");
    if (request_minor_ >= 1 && !end_stream) {
      writeRaw("HTTP/1.1 100 Continue\r\n\r\n");
    }
  }

  // Forwarding facts.
  const std::string ip = remote_address_.substr(0, remote_address_.rfind(':'));
  if (const std::string* xff = h.get("x-forwarded-for")) {
    h.set("x-forwarded-for", *xff + ", " + ip);
  } else {
    h.add("x-forwarded-for", ip);
  }
  if (h.get("x-forwarded-proto") == nullptr) {
    h.add("x-forwarded-proto", "http");
  }
  if (config_->hcm().generate_request_id && h.get("x-request-id") == nullptr) {
    h.add("x-request-id", generateRequestId());
  }

  stream_ = std::make_unique<ActiveStream>(*this, *config_, std::move(info));
  stream_->decodeHeaders(std::move(headers), end_stream);
}

void ServerConnection::onBody(std::string_view data) {
  if (stream_) {
    stream_->decodeData(data);
  }
}

void ServerConnection::onTrailers(HeaderMapPtr trailers) {
  if (stream_) {
    stream_->decodeTrailers(std::move(trailers));
  }
}

void ServerConnection::onMessageComplete() {
  if (stream_) {
    stream_->decodeComplete();
  }
}

void ServerConnection::onCodecError(const CodecError& error) {
  config_->stats().downstream_cx_protocol_error.inc();
  CORRAL_LOG(debug, "downstream {}: codec error {} ({})", remote_address_, error.status,
             error.details);
  if (stream_ && stream_->responseStarted()) {
    close();
    return;
  }
  if (stream_) {
    // The stream ends here; its filters are told and its access log written.
    stream_->info().response_code_details = error.details;
    stream_->info().response_code = error.status;
    finishStream();
  }
  const std::string_view reason = reasonPhrase(error.status);
  config_->stats().downstream_rq_xx[error.status / 100]->inc();
  writeRaw(
      fmt::format("HTTP/1.1 {} {}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n"
                  "x-corral-error: {}\r\nconnection: close\r\n\r\n{}",
                  error.status, reason, reason.size(), error.details, reason));
  closeAfterFlush();
}

void ServerConnection::writeRaw(std::string_view data) {
  socket_->write(data);
}

void ServerConnection::writeHeaders(HeaderMap& headers, bool end_stream) {
  if (closed_) {
    return;
  }
  uint32_t status = 0;
  for (char c : headers.getView(":status")) {
    status = status * 10 + static_cast<uint32_t>(c - '0');
  }
  const bool no_body = head_request_ || status == 204 || status == 304 || status < 200;
  chunked_response_ = false;
  if (!no_body && headers.get("content-length") == nullptr) {
    if (end_stream) {
      headers.add("content-length", "0");
    } else if (request_minor_ >= 1) {
      headers.set("transfer-encoding", "chunked");
      chunked_response_ = true;
    } else {
      close_after_response_ = true;  // HTTP/1.0: the body ends when the connection does
    }
  }
  if (!keep_alive_ || owner_.draining() ||
      (stream_ && stream_->info().drain_connection_upon_completion)) {
    close_after_response_ = true;
  }
  if (close_after_response_) {
    headers.set("connection", "close");
  } else if (request_minor_ == 0) {
    headers.set("connection", "keep-alive");
  }
  headers.set("server", "corral");
  thread_local std::string scratch;
  scratch.clear();
  encodeResponseHead(scratch, headers);
  writeRaw(scratch);
  if (stream_) {
    stream_->onActivity();
  }
}

void ServerConnection::writeData(std::string_view data, bool end_stream) {
  if (closed_ || head_request_) {
    return;
  }
  if (chunked_response_) {
    if (!data.empty()) {
      writeRaw(fmt::format("{:x}\r\n", data.size()));
      writeRaw(data);
      writeRaw("\r\n");
    }
    if (end_stream) {
      writeRaw("0\r\n\r\n");
    }
  } else if (!data.empty()) {
    writeRaw(data);
  }
  if (stream_) {
    stream_->onActivity();
  }
}

void ServerConnection::writeTrailers(const HeaderMap& trailers) {
  if (closed_ || head_request_) {
    return;
  }
  if (chunked_response_) {
    thread_local std::string scratch;
    scratch.clear();
    encodeLastChunk(scratch, &trailers);
    writeRaw(scratch);
  }
}

void ServerConnection::readDisable(bool disable) {
  read_disabled_by_stream_ = disable;
  if (!closing_ && !closed_) {
    socket_->readDisable(disable);
  }
}

size_t ServerConnection::bufferedWriteBytes() const {
  return socket_->bufferedWriteBytes();
}

void ServerConnection::onWriteDrained(std::function<void()> cb) {
  drained_cb_ = std::move(cb);
}

void ServerConnection::onResponseComplete() {
  if (!stream_) {
    return;
  }
  if (!stream_->requestComplete()) {
    // Answered before the request was read in full (an early reply): we cannot find the next
    // request's start without reading this body, so close, as Envoy does.
    close_after_response_ = true;
  }
  finishStream();
  if (close_after_response_ || owner_.draining()) {
    closeAfterFlush();
    return;
  }
  read_disabled_by_stream_ = false;
  socket_->readDisable(false);
  if (socket_->pendingInput() > 0) {
    // Pipelined requests: taken up from the loop, not from inside this stream's callbacks.
    if (!resume_timer_) {
      resume_timer_ = owner_.dispatcher().createTimer([this] { socket_->processPending(); });
    }
    resume_timer_->enable(std::chrono::milliseconds(0));
  } else {
    armIdleTimer();
  }
}

void ServerConnection::finishStream() {
  drained_cb_ = nullptr;  // registered by this stream's filters: it ends with them
  stream_->destroyFilters();
  owner_.dispatcher().deferredDelete(std::move(stream_));
}

void ServerConnection::onStreamReset(std::string_view details) {
  CORRAL_LOG(debug, "downstream {}: stream reset ({})", remote_address_, details);
  close();
}

void ServerConnection::startDrain() {
  if (!stream_) {
    closeAfterFlush();
  } else {
    close_after_response_ = true;
  }
}

void ServerConnection::closeAfterFlush() {
  if (closed_ || closing_) {
    return;
  }
  closing_ = true;
  socket_->readDisable(false);  // to drain, see onData()
  if (idle_timer_) {
    idle_timer_->disable();
  }
  // Send what is queued, then FIN; wait (bounded) for the client's FIN.
  socket_->shutdownWrite();
  flush_timer_ = owner_.dispatcher().createTimer([this] { close(); });
  flush_timer_->enable(kDelayedClose);
}

void ServerConnection::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  socket_->close();
  if (stream_) {
    finishStream();
  }
  idle_timer_.reset();
  resume_timer_.reset();
  flush_timer_.reset();
  owner_.onConnectionClosed(*this);
}

}  // namespace corral::http
