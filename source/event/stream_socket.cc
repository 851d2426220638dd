#include "source/event/stream_socket.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "source/common/assert.h"

namespace corral::event {

namespace {
constexpr size_t kReadSize = 64 * 1024;
constexpr size_t kEagerFlush = 64 * 1024;
}  // namespace

StreamSocket::StreamSocket(Dispatcher& dispatcher, int fd, Callbacks& callbacks)
    : dispatcher_(dispatcher), fd_(fd), callbacks_(callbacks) {
  read_ev_ =
      event_new(dispatcher_.base(), fd_, EV_READ | EV_PERSIST, &StreamSocket::onReadCb, this);
  write_ev_ =
      event_new(dispatcher_.base(), fd_, EV_WRITE | EV_PERSIST, &StreamSocket::onWriteCb, this);
  flush_ev_ = event_new(dispatcher_.base(), -1, 0, &StreamSocket::onFlushCb, this);
  CORRAL_RELEASE_ASSERT(read_ev_ && write_ev_ && flush_ev_, "event_new");
  event_add(read_ev_, nullptr);
}

StreamSocket::~StreamSocket() {
  close();
  event_free(read_ev_);
  event_free(write_ev_);
  event_free(flush_ev_);
}

std::unique_ptr<StreamSocket> StreamSocket::connect(Dispatcher& dispatcher, const sockaddr* addr,
                                                    unsigned addr_len, Callbacks& callbacks) {
  const int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return nullptr;
  }
  auto s = std::make_unique<StreamSocket>(dispatcher, fd, callbacks);
  s->connecting_ = true;
  // Completion (or failure) is seen as writability, also for an immediate result.
  const int rc = ::connect(fd, addr, addr_len);
  (void)rc;
  event_del(s->read_ev_);
  event_add(s->write_ev_, nullptr);
  s->write_armed_ = true;
  return s;
}

void StreamSocket::onReadCb(int, short, void* arg) {
  static_cast<StreamSocket*>(arg)->onReadable();
}

void StreamSocket::onWriteCb(int, short, void* arg) {
  auto* self = static_cast<StreamSocket*>(arg);
  if (self->connecting_) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    self->connecting_ = false;
    event_del(self->write_ev_);
    self->write_armed_ = false;
    if (err != 0) {
      self->closeWith(CloseReason::ConnectFailed);
      return;
    }
    if (self->read_enabled_) {
      event_add(self->read_ev_, nullptr);
    }
    self->callbacks_.onConnected();
    return;
  }
  self->flush();
}

void StreamSocket::onFlushCb(int, short, void* arg) {
  auto* self = static_cast<StreamSocket*>(arg);
  self->flush_scheduled_ = false;
  self->flush();
}

void StreamSocket::onReadable() {
  thread_local char scratch[kReadSize];
  // A few reads per wake-up when the peer sends a lot, then back to the loop for fairness.
  for (int round = 0; round < 4 && fd_ >= 0 && read_enabled_; ++round) {
    const bool direct = in_.empty();
    char* dst;
    if (direct) {
      dst = scratch;
    } else {
      const size_t old = in_.size();
      in_.resize(old + kReadSize);
      dst = in_.data() + old;
    }
    const ssize_t n = ::recv(fd_, dst, kReadSize, 0);
    if (n <= 0) {
      if (!direct) {
        in_.resize(in_.size() - kReadSize);
      }
      if (n == 0) {
        closeWith(CloseReason::RemoteClose);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        closeWith(CloseReason::Error);
      }
      return;
    }
    size_t consumed;
    if (direct) {
      consumed = callbacks_.onData(std::string_view(scratch, static_cast<size_t>(n)));
      if (fd_ >= 0 && consumed < static_cast<size_t>(n)) {
        in_.assign(scratch + consumed, static_cast<size_t>(n) - consumed);
      }
    } else {
      in_.resize(in_.size() - kReadSize + static_cast<size_t>(n));
      consumed = callbacks_.onData(in_);
      if (fd_ >= 0) {
        in_.erase(0, consumed);
      }
    }
    if (static_cast<size_t>(n) < kReadSize) {
      return;  // drained the kernel buffer
    }
  }
}

void StreamSocket::processPending() {
  if (fd_ < 0 || in_.empty()) {
    return;
  }
  const size_t consumed = callbacks_.onData(in_);
  if (fd_ >= 0) {
    in_.erase(0, consumed);
  }
}

void StreamSocket::write(std::string_view data) {
  if (fd_ < 0 || data.empty()) {
    return;
  }
  out_.append(data);
  if (connecting_ || write_armed_) {
    return;  // sent when the socket is writable
  }
  if (bufferedWriteBytes() >= kEagerFlush) {
    flush();
  } else if (!flush_scheduled_) {
    flush_scheduled_ = true;
    event_active(flush_ev_, EV_TIMEOUT, 0);
  }
}

void StreamSocket::flush() {
  while (fd_ >= 0 && bufferedWriteBytes() > 0) {
    const ssize_t n = ::send(fd_, out_.data() + out_off_, bufferedWriteBytes(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!write_armed_) {
          event_add(write_ev_, nullptr);
          write_armed_ = true;
        }
        return;
      }
      if (errno == EINTR) {
        continue;
      }
      closeWith(CloseReason::Error);
      return;
    }
    out_off_ += static_cast<size_t>(n);
  }
  if (fd_ < 0) {
    return;
  }
  const bool was_armed = write_armed_;
  out_.clear();
  out_off_ = 0;
  if (write_armed_) {
    event_del(write_ev_);
    write_armed_ = false;
  }
  if (out_.capacity() > kEagerFlush) {
    std::string().swap(out_);  // do not keep a large buffer on an idle connection
  }
  if (shutdown_pending_) {
    shutdown_pending_ = false;
    ::shutdown(fd_, SHUT_WR);
  }
  if (was_armed) {
    callbacks_.onWriteDrained();
  }
}

void StreamSocket::readDisable(bool disable) {
  if (fd_ < 0 || read_enabled_ == !disable) {
    return;
  }
  read_enabled_ = !disable;
  if (connecting_) {
    return;
  }
  if (disable) {
    event_del(read_ev_);
  } else {
    event_add(read_ev_, nullptr);
  }
}

void StreamSocket::shutdownWrite() {
  if (fd_ < 0) {
    return;
  }
  if (bufferedWriteBytes() == 0) {
    ::shutdown(fd_, SHUT_WR);
  } else {
    shutdown_pending_ = true;
  }
}

void StreamSocket::close() {
  if (fd_ < 0) {
    return;
  }
  event_del(read_ev_);
  event_del(write_ev_);
  event_del(flush_ev_);
  ::close(fd_);
  fd_ = -1;
  in_.clear();
  out_.clear();
  out_off_ = 0;
}

void StreamSocket::closeWith(CloseReason reason) {
  close();
  callbacks_.onClose(reason);
}

}  // namespace corral::event
