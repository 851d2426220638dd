#pragma once
// A non-blocking TCP socket on a Dispatcher, built for the proxy's data path:
// - read interest stays registered (no epoll_ctl per request); reads go into a per-thread
//   scratch buffer, and only bytes the owner leaves unconsumed are copied into the socket's own
//   buffer, so an idle connection holds no buffer memory;
// - writes are gathered during the current loop pass and sent with one send() at its end (a
//   response head and body leave together); write interest is registered only while the kernel
//   buffer is full.
// Loop thread only. The owner outlives every callback (it uses deferred deletion).

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "source/event/dispatcher.h"

struct event;
struct sockaddr;

namespace corral::event {

class StreamSocket {
public:
  enum class CloseReason { RemoteClose, Error, ConnectFailed };

  class Callbacks {
  public:
    virtual ~Callbacks() = default;
    // New input. `data` is all unconsumed input; return how many bytes were consumed. The rest
    // is kept and offered again with the next input (or by processPending()).
    virtual size_t onData(std::string_view data) = 0;
    // The peer closed or the socket failed; the socket is closed already.
    virtual void onClose(CloseReason reason) = 0;
    // The output buffer has drained after having been non-empty.
    virtual void onWriteDrained() {}
    // A connect() started by connect() has completed.
    virtual void onConnected() {}
  };

  // Takes ownership of a connected (or connecting) non-blocking fd.
  StreamSocket(Dispatcher& dispatcher, int fd, Callbacks& callbacks);
  ~StreamSocket();
  StreamSocket(const StreamSocket&) = delete;
  StreamSocket& operator=(const StreamSocket&) = delete;

  // Creates a socket and starts a non-blocking connect; onConnected or onClose(ConnectFailed)
  // follows from the loop (never from inside this call). nullptr if no socket could be made.
  static std::unique_ptr<StreamSocket> connect(Dispatcher& dispatcher, const sockaddr* addr,
                                               unsigned addr_len, Callbacks& callbacks);

  // Queues bytes; they leave at the end of this loop pass (or at once past 64 KiB).
  void write(std::string_view data);
  size_t bufferedWriteBytes() const { return out_.size() - out_off_; }
  // Stops/starts reading. While disabled, the peer's bytes wait in the kernel.
  void readDisable(bool disable);
  // Offers the kept input to onData again (after the owner re-enabled processing).
  void processPending();
  size_t pendingInput() const { return in_.size(); }
  // Sends what is queued, then FIN (for a lingering close).
  void shutdownWrite();
  // Closes now; no callbacks after this.
  void close();
  bool closed() const { return fd_ < 0; }
  int fd() const { return fd_; }

private:
  static void onReadCb(int fd, short events, void* arg);
  static void onWriteCb(int fd, short events, void* arg);
  static void onFlushCb(int fd, short events, void* arg);
  void onReadable();
  void flush();
  void closeWith(CloseReason reason);

  Dispatcher& dispatcher_;
  int fd_;
  Callbacks& callbacks_;
  struct event* read_ev_;
  struct event* write_ev_;
  struct event* flush_ev_;  // activated (no syscall) to send at the end of the loop pass
  std::string in_;
  std::string out_;
  size_t out_off_ = 0;
  bool connecting_ = false;
  bool read_enabled_ = true;
  bool write_armed_ = false;
  bool flush_scheduled_ = false;
  bool shutdown_pending_ = false;
};

}  // namespace corral::event
