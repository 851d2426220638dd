#pragma once
// One event loop (libevent event_base) per thread, like Envoy's Dispatcher.
//
// Thread-safety: everything except post() and exit() must be called on the loop's own thread.
// post() may be called from any thread; the callback runs on the loop's thread.

#include <chrono>
#include <functional>
#include <memory>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

struct event_base;
struct event;
struct timeval;

namespace corral::event {

class Dispatcher;

// An object whose destruction must wait until the current callback has unwound (Envoy's
// deferredDelete): a stream that completes inside its own filter callback, for instance.
class DeferredDeletable {
public:
  virtual ~DeferredDeletable() = default;
};

// A one-shot timer owned by its user; destroying it cancels it. The libevent event lives inside
// the object (no allocation of its own), so a Timer is neither copied nor moved: hold it in place
// (a member, or std::optional<Timer> emplaced when needed) or through TimerPtr.
class Timer {
public:
  Timer(Dispatcher& dispatcher, std::function<void()> cb);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void enable(std::chrono::milliseconds timeout);
  void disable();
  bool enabled() const;

private:
  static void onFire(int, short, void* arg);
  struct event* ev() {
    return reinterpret_cast<struct event*>(storage_);
  }
  const struct event* ev() const { return reinterpret_cast<const struct event*>(storage_); }

  Dispatcher& dispatcher_;
  std::function<void()> cb_;
  alignas(16) unsigned char storage_[128];  // a struct event (checked in dispatcher.cc)
};
using TimerPtr = std::unique_ptr<Timer>;

class Dispatcher {
public:
  Dispatcher();
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  event_base* base() { return base_; }
  TimerPtr createTimer(std::function<void()> cb) {
    return std::make_unique<Timer>(*this, std::move(cb));
  }
  // Runs cb on this loop's thread soon. Any thread.
  void post(std::function<void()> cb);
  // Destroys `d` on this loop's thread after the current callback returns. Loop thread only.
  void deferredDelete(std::unique_ptr<DeferredDeletable> d);
  // Destroys everything pending deletion now (for tests and shutdown).
  void clearDeferredDeleteList();
  // libevent's "common timeout" for this duration: timers that share a duration are kept in a
  // queue instead of the heap, so arming one is O(1). Falls back to a plain timeval (nullptr
  // result) past libevent's limit of distinct durations.
  const timeval* commonTimeout(std::chrono::milliseconds timeout);
  // The loop's cached clock (read once per loop pass; no clock call). Wall-clock based, so use
  // it for coarse intervals only (idle timers), never for deadlines that must not jump.
  std::chrono::milliseconds cachedNowMs() const;
  // Runs the loop until exit() is called.
  void run();
  // True on the thread running this loop. Any thread.
  bool isThreadSafe() const {
    return thread_id_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }
  // Any thread.
  void exit();
  // Runs after each batch of posted callbacks (loop thread; set before run()). The sandbox
  // process uses it to notice what a plugin's goroutine changed through posted work.
  void setAfterPostedHook(std::function<void()> hook) { after_posted_ = std::move(hook); }

private:
  static void onPost(int, short, void* arg);
  static void onDeferred(int, short, void* arg);
  void runPosted();

  event_base* base_;
  int post_fd_;  // eventfd: posts wake the loop without locking the event_base
  struct event* post_ev_;
  struct event* deferred_ev_;
  std::unordered_map<int64_t, const timeval*> common_timeouts_;
  std::vector<std::unique_ptr<DeferredDeletable>> to_delete_;
  std::atomic<std::thread::id> thread_id_{};
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;
  std::function<void()> after_posted_;
};

}  // namespace corral::event
