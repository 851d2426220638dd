#include "source/event/dispatcher.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "source/common/assert.h"

namespace corral::event {
static_assert(sizeof(struct event) <= 128, "Timer::storage_ is too small for struct event");

Timer::Timer(Dispatcher& dispatcher, std::function<void()> cb)
    : dispatcher_(dispatcher), cb_(std::move(cb)) {
  CORRAL_RELEASE_ASSERT(event_assign(ev(), dispatcher.base(), -1, 0, &Timer::onFire, this) == 0,
                        "event_assign");
}

Timer::~Timer() {
  event_del(ev());
}

void Timer::enable(std::chrono::milliseconds timeout) {
  if (const timeval* common = dispatcher_.commonTimeout(timeout)) {
    evtimer_add(ev(), common);
    return;
  }
  timeval tv;
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  evtimer_add(ev(), &tv);
}

void Timer::disable() {
  evtimer_del(ev());
}

bool Timer::enabled() const {
  return evtimer_pending(ev(), nullptr) != 0;
}

void Timer::onFire(int, short, void* arg) {
  // The callback may destroy this timer (and so cb_): run a copy, touch nothing after.
  std::function<void()> cb = static_cast<Timer*>(arg)->cb_;
  cb();
}

Dispatcher::Dispatcher() {
  event_config* cfg = event_config_new();
  // A loop belongs to one thread; posts use their own lock.
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  CORRAL_RELEASE_ASSERT(base_ != nullptr, "event_base_new");
  post_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  CORRAL_RELEASE_ASSERT(post_fd_ >= 0, "eventfd");
  post_ev_ = event_new(base_, post_fd_, EV_READ | EV_PERSIST, &Dispatcher::onPost, this);
  CORRAL_RELEASE_ASSERT(post_ev_ != nullptr, "event_new");
  event_add(post_ev_, nullptr);
  deferred_ev_ = event_new(base_, -1, 0, &Dispatcher::onDeferred, this);
  CORRAL_RELEASE_ASSERT(deferred_ev_ != nullptr, "event_new");
}

Dispatcher::~Dispatcher() {
  clearDeferredDeleteList();
  event_free(deferred_ev_);
  event_free(post_ev_);
  ::close(post_fd_);
  event_base_free(base_);
}

void Dispatcher::post(std::function<void()> cb) {
  bool first;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    first = posted_.empty();
    posted_.push_back(std::move(cb));
  }
  if (first) {
    const uint64_t one = 1;
    // A full counter (impossible in practice) still leaves the fd readable: the wake-up is kept.
    [[maybe_unused]] ssize_t n = ::write(post_fd_, &one, sizeof(one));
  }
}

const timeval* Dispatcher::commonTimeout(std::chrono::milliseconds timeout) {
  auto it = common_timeouts_.find(timeout.count());
  if (it != common_timeouts_.end()) {
    return it->second;
  }
  if (common_timeouts_.size() >= 128) {  // libevent allows 256 per base
    return nullptr;
  }
  timeval tv;
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  const timeval* common = event_base_init_common_timeout(base_, &tv);
  common_timeouts_.emplace(timeout.count(), common);
  return common;
}

std::chrono::milliseconds Dispatcher::cachedNowMs() const {
  timeval tv;
  event_base_gettimeofday_cached(base_, &tv);
  return std::chrono::milliseconds(static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000);
}

void Dispatcher::deferredDelete(std::unique_ptr<DeferredDeletable> d) {
  if (to_delete_.empty()) {
    event_active(deferred_ev_, EV_TIMEOUT, 0);
  }
  to_delete_.push_back(std::move(d));
}

void Dispatcher::clearDeferredDeleteList() {
  // Destructors may defer more deletions; keep going until none are left.
  while (!to_delete_.empty()) {
    std::vector<std::unique_ptr<DeferredDeletable>> batch;
    batch.swap(to_delete_);
    batch.clear();
  }
}

void Dispatcher::onDeferred(int, short, void* arg) {
  static_cast<Dispatcher*>(arg)->clearDeferredDeleteList();
}

void Dispatcher::onPost(int, short, void* arg) {
  static_cast<Dispatcher*>(arg)->runPosted();
}

void Dispatcher::runPosted() {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(post_fd_, &count, sizeof(count));
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    work.swap(posted_);
  }
  for (auto& cb : work) {
    cb();
  }
  if (after_posted_ && !work.empty()) {
    after_posted_();
  }
}

void Dispatcher::run() {
  thread_id_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
  runPosted();  // run what was posted during shutdown so no callback is lost
}

void Dispatcher::exit() {
  post([this] { event_base_loopbreak(base_); });
}

}  // namespace corral::event
