#include "source/upstream/conn_pool.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <fmt/format.h>

#include "source/common/assert.h"

namespace corral::upstream {

const char* poolFailureName(PoolFailure f) {
  switch (f) {
  case PoolFailure::Overflow:
    return "overflow";
  case PoolFailure::ConnectFailure:
    return "connection_failure";
  case PoolFailure::ConnectTimeout:
    return "connection_timeout";
  }
  return "unknown";
}

struct ConnPool::Pending : public PendingHandle {
  Pending(ConnPool& p, PoolCallbacks& cb) : pool(p), callbacks(cb) {}
  void cancel() override {
    pool.cluster_.stats().upstream_rq_pending_active.dec();
    pool.cluster_.pendingRequests().release();
    pool.cluster_.requests().release();
    pool.pending_.erase(it);  // destroys this
  }
  ConnPool& pool;
  PoolCallbacks& callbacks;
  std::list<std::unique_ptr<Pending>>::iterator it;
};

ConnPool::ConnPool(const ClusterInfo& cluster, HostConstSharedPtr host,
                   event::Dispatcher& dispatcher)
    : cluster_(cluster), host_(std::move(host)), dispatcher_(dispatcher) {}

ConnPool::~ConnPool() {
  // Workers destroy pools after every stream is gone; only idle connections remain.
  while (!pending_.empty()) {
    pending_.front()->cancel();
  }
  for (auto& c : connections_) {
    c->setResponseDecoder(nullptr);
  }
  while (!connections_.empty()) {
    connections_.front()->reset();
  }
}

PendingHandle* ConnPool::newStream(PoolCallbacks& callbacks) {
  if (!cluster_.requests().tryAcquire()) {
    cluster_.stats().upstream_rq_pending_overflow.inc();
    callbacks.onPoolFailure(PoolFailure::Overflow);
    return nullptr;
  }
  if (!idle_.empty()) {
    ClientConnection* c = idle_.front();
    idle_.pop_front();
    attach(*c, callbacks);
    return nullptr;
  }
  if (!cluster_.pendingRequests().tryAcquire()) {
    cluster_.requests().release();
    cluster_.stats().upstream_rq_pending_overflow.inc();
    callbacks.onPoolFailure(PoolFailure::Overflow);
    return nullptr;
  }
  cluster_.stats().upstream_rq_pending_total.inc();
  cluster_.stats().upstream_rq_pending_active.inc();
  auto pending = std::make_unique<Pending>(*this, callbacks);
  Pending* handle = pending.get();
  pending_.push_back(std::move(pending));
  handle->it = std::prev(pending_.end());
  maybeConnect();
  // maybeConnect may have failed it synchronously.
  for (auto& p : pending_) {
    if (p.get() == handle) {
      return handle;
    }
  }
  return nullptr;
}

void ConnPool::maybeConnect() {
  while (connecting_ < pending_.size()) {
    if (!cluster_.connections().tryAcquire()) {
      cluster_.stats().upstream_cx_overflow.inc();
      return;  // waits for a connection of this pool to free up
    }
    cluster_.stats().upstream_cx_total.inc();
    cluster_.stats().upstream_cx_active.inc();
    ++connecting_;
    auto conn = std::make_unique<ClientConnection>(*this);
    ClientConnection* raw = conn.get();
    connections_.push_back(std::move(conn));
    raw->self_it = std::prev(connections_.end());
  }
}

void ConnPool::attach(ClientConnection& c, PoolCallbacks& callbacks) {
  c.markBusy();
  ++active_requests_;
  cluster_.stats().upstream_rq_total.inc();
  cluster_.stats().upstream_rq_active.inc();
  callbacks.onPoolReady(c);
}

void ConnPool::finishRequest() {
  --active_requests_;
  cluster_.stats().upstream_rq_active.dec();
  cluster_.requests().release();
}

void ConnPool::serveQueue(ClientConnection& c) {
  if (!pending_.empty()) {
    std::unique_ptr<Pending> p = std::move(pending_.front());
    pending_.pop_front();
    cluster_.stats().upstream_rq_pending_active.dec();
    cluster_.pendingRequests().release();
    attach(c, p->callbacks);
    return;
  }
  idle_.push_back(&c);
  c.idle_it = std::prev(idle_.end());
}

void ConnPool::failPending(PoolFailure reason, size_t keep) {
  while (pending_.size() > keep) {
    std::unique_ptr<Pending> p = std::move(pending_.front());
    pending_.pop_front();
    cluster_.stats().upstream_rq_pending_active.dec();
    cluster_.pendingRequests().release();
    cluster_.requests().release();
    p->callbacks.onPoolFailure(reason);
  }
}

void ConnPool::onConnected(ClientConnection& c) {
  --connecting_;
  serveQueue(c);
}

void ConnPool::onConnectFailed(ClientConnection& c, PoolFailure reason) {
  --connecting_;
  if (reason == PoolFailure::ConnectTimeout) {
    cluster_.stats().upstream_cx_connect_timeout.inc();
  }
  cluster_.stats().upstream_cx_connect_fail.inc();
  CORRAL_LOG(debug, "cluster {}: connect to {} failed ({})", cluster_.name(), host_->address,
             poolFailureName(reason));
  // Requests beyond what the remaining connection attempts can serve fail now (before the
  // connection's close frees a slot and would start another attempt for them).
  failPending(reason, connecting_);
  c.reset();
}

void ConnPool::onReleased(ClientConnection& c, bool reusable) {
  finishRequest();
  if (reusable) {
    serveQueue(c);
  } else {
    c.reset();
  }
}

void ConnPool::onClosed(ClientConnection& c, bool was_busy) {
  if (was_busy) {
    finishRequest();
  }
  if (c.state() == ClientConnection::State::Idle) {
    idle_.erase(c.idle_it);
  }
  cluster_.connections().release();
  cluster_.stats().upstream_cx_active.dec();
  cluster_.stats().upstream_cx_destroy.inc();
  std::unique_ptr<ClientConnection> self = std::move(*c.self_it);
  connections_.erase(c.self_it);
  dispatcher_.deferredDelete(std::move(self));
  // A freed connection slot may let a waiting request connect.
  if (!pending_.empty()) {
    maybeConnect();
  }
}

void ConnPool::drainIdle() {
  while (!idle_.empty()) {
    idle_.front()->reset();
  }
}

// ---- ClientConnection ----

ClientConnection::ClientConnection(ConnPool& pool)
    : pool_(pool),
      parser_(http::Parser::Type::Response, *this, http::ParserLimits{60 * 1024, 100}) {
  const Host& h = pool_.host();
  socket_ = event::StreamSocket::connect(
      pool_.dispatcher(), reinterpret_cast<const sockaddr*>(&h.addr), h.addr_len, *this);
  const bool failed_now = socket_ == nullptr;
  // Failures are reported from the loop, never from inside the pool call that connects.
  connect_timer_ = pool_.dispatcher().createTimer([this, failed_now] {
    if (state_ == State::Connecting) {
      pool_.onConnectFailed(*this,
                            failed_now ? PoolFailure::ConnectFailure : PoolFailure::ConnectTimeout);
    }
  });
  connect_timer_->enable(failed_now ? std::chrono::milliseconds(0)
                                    : pool_.cluster().config().connect_timeout);
}

ClientConnection::~ClientConnection() = default;

void ClientConnection::onConnected() {
  connect_timer_.reset();
  const int one = 1;
  ::setsockopt(socket_->fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  state_ = State::Idle;
  pool_.onConnected(*this);
}

void ClientConnection::onWriteDrained() {
  if (drained_cb_) {
    auto cb = std::move(drained_cb_);
    drained_cb_ = nullptr;
    cb();
  }
}

void ClientConnection::onClose(event::StreamSocket::CloseReason reason) {
  switch (state_) {
  case State::Connecting:
    connect_timer_.reset();
    pool_.onConnectFailed(*this, PoolFailure::ConnectFailure);
    return;
  case State::Busy:
    if (reason == event::StreamSocket::CloseReason::RemoteClose && parser_.midMessage()) {
      // A close-delimited body ends here, and so does the connection.
      peer_closed_ = true;
      auto r = parser_.feedEof();
      if (r.error) {
        fail(r.error->details);
        return;
      }
      if (state_ != State::Busy) {
        return;
      }
    }
    fail("remote_reset");
    return;
  case State::Idle:
    close();
    return;
  case State::Closed:
    return;
  }
}

size_t ClientConnection::onData(std::string_view data) {
  size_t consumed = 0;
  while (consumed < data.size() && (state_ == State::Busy || state_ == State::Idle)) {
    if (state_ == State::Idle) {
      // Bytes nobody asked for: the connection cannot be trusted for reuse.
      pool_.cluster().stats().upstream_cx_protocol_error.inc();
      close();
      return data.size();
    }
    if (parser_.paused()) {
      parser_.resume();
    }
    const auto r = parser_.feed(data.data() + consumed, data.size() - consumed);
    if (state_ == State::Closed) {
      return data.size();
    }
    flushHeldBody();
    if (state_ == State::Closed) {
      return data.size();
    }
    consumed += r.consumed;
    if (r.error) {
      pool_.cluster().stats().upstream_cx_protocol_error.inc();
      fail(r.error->details);
      return data.size();
    }
    if (r.consumed == 0) {
      break;
    }
  }
  return state_ == State::Closed ? data.size() : consumed;
}

void ClientConnection::encodeHeaders(const http::HeaderMap& headers, bool end_stream) {
  thread_local std::string scratch;
  scratch.clear();
  http::encodeRequestHead(scratch, headers);
  chunked_request_ = !end_stream && headers.get("content-length") == nullptr;
  if (chunked_request_) {
    scratch.insert(scratch.size() - 2, "transfer-encoding: chunked\r\n");
  }
  parser_.setHeadRequest(headers.getView(":method") == "HEAD");
  request_complete_ = end_stream;
  response_complete_ = false;
  response_headers_end_ = false;
  response_trailers_ = false;
  socket_->write(scratch);
}

void ClientConnection::encodeData(std::string_view data, bool end_stream) {
  if (chunked_request_) {
    thread_local std::string scratch;
    scratch.clear();
    http::encodeChunk(scratch, data);
    if (end_stream) {
      http::encodeLastChunk(scratch, nullptr);
    }
    socket_->write(scratch);
  } else {
    socket_->write(data);
  }
  request_complete_ = request_complete_ || end_stream;
}

void ClientConnection::encodeTrailers(const http::HeaderMap& trailers) {
  if (chunked_request_) {
    thread_local std::string scratch;
    scratch.clear();
    http::encodeLastChunk(scratch, &trailers);
    socket_->write(scratch);
  }
  request_complete_ = true;
}

void ClientConnection::readDisable(bool disable) {
  if (socket_ != nullptr) {
    socket_->readDisable(disable);
  }
}

size_t ClientConnection::bufferedBytes() const {
  return socket_ != nullptr ? socket_->bufferedWriteBytes() : 0;
}

void ClientConnection::onHeaders(http::HeaderMapPtr headers, bool end_stream) {
  response_headers_end_ = end_stream;
  if (decoder_ != nullptr) {
    decoder_->onUpstreamHeaders(std::move(headers), end_stream);
  }
}

// A body chunk is held until the parser says whether the message ends in this same read: the
// last chunk then goes on with end_stream (one filter-chain pass instead of two, as Envoy's
// codec does). Held data points into the read buffer: it never outlives the onData() call.
void ClientConnection::onBody(std::string_view data) {
  flushHeldBody();
  held_body_ = data;
}

void ClientConnection::flushHeldBody() {
  if (held_body_.empty()) {
    return;
  }
  const std::string_view data = held_body_;
  held_body_ = {};
  if (decoder_ != nullptr) {
    decoder_->onUpstreamData(data, false);
  }
}

void ClientConnection::onTrailers(http::HeaderMapPtr trailers) {
  flushHeldBody();
  response_trailers_ = true;
  if (decoder_ != nullptr) {
    decoder_->onUpstreamTrailers(std::move(trailers));
  }
}

void ClientConnection::onMessageComplete() {
  response_complete_ = true;
  keep_alive_ = !peer_closed_ && parser_.keepAlive();
  const std::string_view last = held_body_;
  held_body_ = {};
  if (decoder_ != nullptr && !response_headers_end_ && !response_trailers_) {
    decoder_->onUpstreamData(last, true);
  }
}

void ClientConnection::release() {
  if (state_ != State::Busy) {
    return;
  }
  decoder_ = nullptr;
  drained_cb_ = nullptr;
  // Bytes after the response (if any) are caught by onData, which closes an idle connection
  // that receives data.
  const bool reusable = response_complete_ && request_complete_ && keep_alive_;
  if (reusable) {
    state_ = State::Idle;
    socket_->readDisable(false);
    pool_.onReleased(*this, true);
  } else {
    // The pool's accounting for this request ends with the close.
    close();
  }
}

void ClientConnection::reset() {
  decoder_ = nullptr;
  close();
}

void ClientConnection::fail(std::string_view reason) {
  ResponseDecoder* d = decoder_;
  decoder_ = nullptr;
  close();
  if (d != nullptr) {
    pool_.cluster().stats().upstream_rq_rx_reset.inc();
    d->onUpstreamReset(reason);
  }
}

void ClientConnection::close() {
  held_body_ = {};
  if (state_ == State::Closed) {
    return;
  }
  const bool was_busy = state_ == State::Busy;
  connect_timer_.reset();
  // Close the socket now, not at the deferred deletion, so the peer sees it at once.
  if (socket_ != nullptr) {
    socket_->close();
  }
  pool_.onClosed(*this, was_busy);  // reads state_ (idle list membership) before it changes
  state_ = State::Closed;
}

}  // namespace corral::upstream
