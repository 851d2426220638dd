#pragma once
// A read watch on a file descriptor in a Dispatcher's loop, with a std::function callback
// (pidfds, pipes, eventfds). Destroying it removes the watch. Loop thread only.

#include <event2/event.h>

#include <functional>

#include "source/event/dispatcher.h"

namespace corral::event {

class FdWatch {
public:
  // `persist`: keeps watching after each callback (else fires once).
  FdWatch(Dispatcher& d, int fd, bool persist, std::function<void()> cb) : cb_(std::move(cb)) {
    ev_ = event_new(d.base(), fd, static_cast<short>(EV_READ | (persist ? EV_PERSIST : 0)),
                    &FdWatch::onEvent, this);
    event_add(ev_, nullptr);
  }
  ~FdWatch() { event_free(ev_); }
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

private:
  static void onEvent(evutil_socket_t, short, void* arg) { static_cast<FdWatch*>(arg)->cb_(); }
  struct event* ev_;
  std::function<void()> cb_;
};

}  // namespace corral::event
