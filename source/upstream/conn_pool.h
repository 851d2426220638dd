#pragma once
// A per-worker pool of HTTP/1.1 connections to one upstream host, with keep-alive reuse,
// a queue of requests waiting for a connection, connect timeouts, and the cluster's circuit
// breakers (max_connections, max_pending_requests, max_requests). Worker thread only.
//
// Use: newStream() hands a request a connection now or later (onPoolReady) or fails it
// (onPoolFailure). The owner of a ready connection writes the request with encode*(), receives
// the response through its ResponseDecoder, and ends with release() (response done; the
// connection returns to the pool if it can carry another request) or reset().

#include <list>
#include <memory>
#include <string>

#include "source/event/dispatcher.h"
#include "source/event/stream_socket.h"
#include "source/http/codec.h"
#include "source/upstream/cluster_manager.h"

namespace corral::upstream {

enum class PoolFailure { Overflow, ConnectFailure, ConnectTimeout };
const char* poolFailureName(PoolFailure f);

class ClientConnection;

class ResponseDecoder {
public:
  virtual ~ResponseDecoder() = default;
  virtual void onUpstreamHeaders(http::HeaderMapPtr headers, bool end_stream) = 0;
  virtual void onUpstreamData(std::string_view data, bool end_stream) = 0;
  virtual void onUpstreamTrailers(http::HeaderMapPtr trailers) = 0;
  // The connection failed before the response ended ("remote reset", "protocol error").
  virtual void onUpstreamReset(std::string_view reason) = 0;
};

class PoolCallbacks {
public:
  virtual ~PoolCallbacks() = default;
  virtual void onPoolReady(ClientConnection& connection) = 0;
  virtual void onPoolFailure(PoolFailure reason) = 0;
};

// A request waiting for a connection; cancel() withdraws it.
class PendingHandle {
public:
  virtual ~PendingHandle() = default;
  virtual void cancel() = 0;
};

class ConnPool {
public:
  ConnPool(const ClusterInfo& cluster, HostConstSharedPtr host, event::Dispatcher& dispatcher);
  ~ConnPool();

  // Returns a handle when the request waits; nullptr when the callback already ran.
  PendingHandle* newStream(PoolCallbacks& callbacks);
  const Host& host() const { return *host_; }
  uint64_t activeRequests() const { return active_requests_; }
  void drainIdle();

  // For ClientConnection.
  void onConnected(ClientConnection& c);
  void onConnectFailed(ClientConnection& c, PoolFailure reason);
  void onReleased(ClientConnection& c, bool reusable);
  void onClosed(ClientConnection& c, bool was_busy);
  const ClusterInfo& cluster() const { return cluster_; }
  event::Dispatcher& dispatcher() { return dispatcher_; }

private:
  struct Pending;
  void attach(ClientConnection& c, PoolCallbacks& callbacks);
  void finishRequest();
  void failPending(PoolFailure reason, size_t keep);
  void maybeConnect();
  void serveQueue(ClientConnection& c);

  const ClusterInfo& cluster_;
  HostConstSharedPtr host_;
  event::Dispatcher& dispatcher_;
  std::list<std::unique_ptr<ClientConnection>> connections_;
  std::list<ClientConnection*> idle_;
  std::list<std::unique_ptr<Pending>> pending_;
  size_t connecting_ = 0;
  uint64_t active_requests_ = 0;
};

class ClientConnection : public http::MessageCallbacks,
                         public event::StreamSocket::Callbacks,
                         public event::DeferredDeletable {
public:
  explicit ClientConnection(ConnPool& pool);
  ~ClientConnection() override;

  // Request side (after onPoolReady).
  void setResponseDecoder(ResponseDecoder* decoder) { decoder_ = decoder; }
  void encodeHeaders(const http::HeaderMap& headers, bool end_stream);
  void encodeData(std::string_view data, bool end_stream);
  void encodeTrailers(const http::HeaderMap& trailers);
  void readDisable(bool disable);
  size_t bufferedBytes() const;
  void onDrained(std::function<void()> cb) { drained_cb_ = std::move(cb); }
  // The exchange is over: reuse the connection if both messages ended cleanly.
  void release();
  // Abandon the exchange and close.
  void reset();
  const Host& host() const { return pool_.host(); }

  // MessageCallbacks (response codec)
  void onHeaders(http::HeaderMapPtr headers, bool end_stream) override;
  void onBody(std::string_view data) override;
  void onTrailers(http::HeaderMapPtr trailers) override;
  void onMessageComplete() override;

  enum class State { Connecting, Idle, Busy, Closed };
  State state() const { return state_; }
  void markBusy() { state_ = State::Busy; }
  std::list<ClientConnection*>::iterator idle_it;
  std::list<std::unique_ptr<ClientConnection>>::iterator self_it;

private:
  // StreamSocket::Callbacks
  size_t onData(std::string_view data) override;
  void onClose(event::StreamSocket::CloseReason reason) override;
  void onWriteDrained() override;
  void onConnected() override;
  void fail(std::string_view reason);
  void close();

  ConnPool& pool_;
  http::Parser parser_;
  std::unique_ptr<event::StreamSocket> socket_;
  ResponseDecoder* decoder_ = nullptr;
  event::TimerPtr connect_timer_;
  std::function<void()> drained_cb_;
  State state_ = State::Connecting;
  bool chunked_request_ = false;
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool keep_alive_ = true;
  void flushHeldBody();
  std::string_view held_body_;  // see onBody()
  bool response_headers_end_ = false;
  bool response_trailers_ = false;
  bool peer_closed_ = false;
};

}  // namespace corral::upstream
