#pragma once
// A downstream HTTP/1.1 connection: reads bytes, runs the codec, owns at most one ActiveStream
// at a time (pipelined requests wait in the input buffer and are answered in order), writes
// responses with the right framing, and handles keep-alive, timeouts and drain.
// Lives on one worker thread.

#include <memory>
#include <string>

#include "source/event/dispatcher.h"
#include "source/event/stream_socket.h"
#include "source/http/codec.h"
#include "source/http/conn_manager_config.h"
#include "source/http/filter_manager.h"

namespace corral::http {

class ServerConnection;

// The worker that owns connections.
class ConnectionOwner {
public:
  virtual ~ConnectionOwner() = default;
  virtual event::Dispatcher& dispatcher() = 0;
  virtual bool draining() const = 0;
  // The connection has closed; the owner unlinks it and defers its deletion.
  virtual void onConnectionClosed(ServerConnection& connection) = 0;
};

class ServerConnection : public event::DeferredDeletable,
                         public event::StreamSocket::Callbacks,
                         public MessageCallbacks,
                         public StreamOwner {
public:
  ServerConnection(ConnectionOwner& owner, ConnectionManagerConfigSharedPtr config, int fd,
                   std::string remote_address, std::string local_address);
  ~ServerConnection() override;

  // Drain: close now if idle, else after the current response.
  void startDrain();
  bool closed() const { return closed_; }

  // StreamSocket::Callbacks
  size_t onData(std::string_view data) override;
  void onClose(event::StreamSocket::CloseReason reason) override;
  void onWriteDrained() override;

  // MessageCallbacks (codec)
  void onHeaders(HeaderMapPtr headers, bool end_stream) override;
  void onBody(std::string_view data) override;
  void onTrailers(HeaderMapPtr trailers) override;
  void onMessageComplete() override;

  // StreamOwner
  event::Dispatcher& dispatcher() override { return owner_.dispatcher(); }
  void writeHeaders(HeaderMap& headers, bool end_stream) override;
  void writeData(std::string_view data, bool end_stream) override;
  void writeTrailers(const HeaderMap& trailers) override;
  void readDisable(bool disable) override;
  size_t bufferedWriteBytes() const override;
  void onWriteDrained(std::function<void()> cb) override;
  void onResponseComplete() override;
  void onStreamReset(std::string_view details) override;

private:
  void onCodecError(const CodecError& error);
  void writeRaw(std::string_view data);
  void finishStream();
  void closeAfterFlush();
  void close();
  void armIdleTimer();
  void onIdleTimer();

  ConnectionOwner& owner_;
  ConnectionManagerConfigSharedPtr config_;
  Parser parser_;
  std::unique_ptr<event::StreamSocket> socket_;
  std::unique_ptr<ActiveStream> stream_;
  std::string remote_address_;
  std::string local_address_;
  event::TimerPtr idle_timer_;
  std::chrono::milliseconds idle_since_{0};
  event::TimerPtr
      resume_timer_;  // processes pipelined input outside the callback that ended a stream
  event::TimerPtr flush_timer_;  // bounds a lingering close (Envoy's delayed_close_timeout)
  std::function<void()> drained_cb_;
  uint16_t request_minor_ = 1;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool chunked_response_ = false;
  bool close_after_response_ = false;
  bool closing_ = false;  // flushing before close
  bool closed_ = false;
  bool read_disabled_by_stream_ = false;
};

// A fresh UUID v4 (random) string, as Envoy generates for x-request-id.
std::string generateRequestId();

}  // namespace corral::http
