#include "source/sandbox/sandboxed_library.h"

#include <fmt/format.h>

#include "source/common/logger.h"

namespace corral::sandbox {
namespace {

constexpr uint32_t kMaxActionPayload = 1 << 20;

}  // namespace

SandboxCounters::SandboxCounters(stats::Store& store, const std::string& id)
    : crash(store.counter("sandbox." + id + ".crash")),
      timeout(store.counter("sandbox." + id + ".timeout")),
      oom(store.counter("sandbox." + id + ".oom")),
      killed(store.counter("sandbox." + id + ".killed")),
      restarts(store.counter("sandbox." + id + ".restarts")),
      fail_open(store.counter("sandbox." + id + ".fail_open")),
      fail_closed(store.counter("sandbox." + id + ".fail_closed")) {}

// ---- WorkerLink ----

WorkerLink::WorkerLink(SandboxedLibrary& library, event::Dispatcher& dispatcher, pid_t pid,
                       size_t slot, uint32_t generation, std::shared_ptr<Channel> channel,
                       std::shared_ptr<std::atomic<uint32_t>> in_flight)
    : library_(library),
      dispatcher_(dispatcher),
      pid_(pid),
      slot_(slot),
      generation_(generation),
      channel_(std::move(channel)),
      in_flight_(std::move(in_flight)),
      in_(channel_->proxyReader(kMaxActionPayload)),
      out_(channel_->proxyWriter()) {
  in_.prepareToWait(0);  // the loop watches the eventfd: always wake us
  // Events written during one loop pass (a response's headers and body, several streams)
  // wake the process once, at the end of the pass.
  out_.setDeferWake(true);
  wake_timer_ = dispatcher_.createTimer([this] {
    lazy_timer_->disable();
    out_.flushWake();
  });
  lazy_timer_ = dispatcher_.createTimer([this] { out_.flushWake(); });
  watch_ =
      std::make_unique<event::FdWatch>(dispatcher_, in_.wakeFd(), true, [this] { onReadable(); });
  retry_ = dispatcher_.createTimer([this] { flush(); });
  fail_timer_ = dispatcher_.createTimer([this] { fail(kProtocolViolation); });
}

WorkerLink::~WorkerLink() {
  in_flight_->fetch_sub(static_cast<uint32_t>(endpoints_.size()));
}

uint64_t WorkerLink::attach(StreamEndpoint& endpoint) {
  const uint64_t id = next_id_++;
  endpoints_[id] = &endpoint;
  in_flight_->fetch_add(1);
  return id;
}

void WorkerLink::detach(uint64_t id) {
  if (endpoints_.erase(id) != 0) {
    in_flight_->fetch_sub(1);
  }
}

void WorkerLink::send(MessageType type, std::string payload, bool urgent) {
  if (dead_ || broken_) {
    return;
  }
  if (queued_.empty()) {
    const auto r = out_.write(static_cast<uint32_t>(type), payload);
    if (r == RingWriter::Result::Ok) {
      if (urgent) {
        wake_timer_->enable(std::chrono::milliseconds(0));
      } else if (!wake_timer_->enabled()) {
        lazy_timer_->enable(std::chrono::milliseconds(1));
      }
      return;
    }
    if (r != RingWriter::Result::Full) {
      breakLink();
      return;
    }
  }
  queued_bytes_ += payload.size();
  queued_.emplace_back(static_cast<uint32_t>(type), std::move(payload));
  retry_->enable(std::chrono::milliseconds(1));
}

void WorkerLink::breakLink() {
  // The process scribbled over the ring's positions. The streams are failed from the loop, not
  // from inside the caller of send() (a stream in the middle of its own callback).
  broken_ = true;
  library_.killProcess(pid_, "protocol violation on a data channel");
  fail_timer_->enable(std::chrono::milliseconds(0));
}

void WorkerLink::flush() {
  while (!dead_ && !broken_ && !queued_.empty()) {
    const auto r = out_.write(queued_.front().first, queued_.front().second);
    if (r == RingWriter::Result::Full) {
      out_.flushWake();  // what did fit must reach the process, or the ring never drains
      retry_->enable(std::chrono::milliseconds(1));
      return;
    }
    if (r != RingWriter::Result::Ok) {
      breakLink();
      return;
    }
    queued_bytes_ -= queued_.front().second.size();
    queued_.pop_front();
  }
  out_.flushWake();
  if (!dead_ && queued_.empty() && !drain_waiters_.empty()) {
    auto waiters = std::move(drain_waiters_);
    drain_waiters_.clear();
    for (uint64_t id : waiters) {
      if (auto it = endpoints_.find(id); it != endpoints_.end()) {
        it->second->onLinkDrained();
      }
    }
  }
}

void WorkerLink::onReadable() {
  in_.doneWaiting();
  do {
    Message m;
    RingReader::Result r;
    while (!dead_ && (r = in_.read(&m)) == RingReader::Result::Message) {
      WireReader reader(m.payload);
      const uint64_t id = reader.u64();
      const auto type = static_cast<MessageType>(m.type);
      const bool action = m.type >= static_cast<uint32_t>(MessageType::PassHeaders) &&
                          m.type <= static_cast<uint32_t>(MessageType::Idle);
      if (!reader.ok() || !action || id == 0 || id >= next_id_) {
        r = RingReader::Result::Corrupt;
        break;
      }
      auto it = endpoints_.find(id);
      if (it == endpoints_.end()) {
        continue;  // a stream that ended here while its action was on the way
      }
      if (!it->second->onAction(type, reader)) {
        r = RingReader::Result::Corrupt;
        break;
      }
    }
    if (dead_) {
      return;
    }
    if (r == RingReader::Result::Corrupt) {
      CORRAL_LOG(err, "[sandbox {}] pid {}: malformed action on a data channel", library_.id(),
                 pid_);
      library_.killProcess(pid_, "protocol violation on a data channel");
      fail(kProtocolViolation);
      return;
    }
  } while (in_.prepareToWait(0) && (in_.awake(), true));
}

void WorkerLink::fail(const std::string& reason) {
  if (dead_) {
    return;
  }
  dead_ = true;
  watch_.reset();
  retry_->disable();
  fail_timer_->disable();
  wake_timer_->disable();
  lazy_timer_->disable();
  queued_.clear();
  queued_bytes_ = 0;
  drain_waiters_.clear();
  auto endpoints = std::move(endpoints_);
  endpoints_.clear();
  in_flight_->fetch_sub(static_cast<uint32_t>(endpoints.size()));
  for (auto& [id, e] : endpoints) {
    e->onSandboxLost(reason);
  }
}

// ---- SandboxedLibrary ----

SandboxedLibrary::SandboxedLibrary(std::string library_id, std::string library_path,
                                   Options options, uint32_t workers, event::Dispatcher& main,
                                   stats::Store& stats)
    : id_(std::move(library_id)),
      path_(std::move(library_path)),
      options_(std::move(options)),
      main_(main),
      counters_(stats, id_),
      stats_mirror_(stats) {
  for (uint32_t i = 0; i < std::max<uint32_t>(workers, 1); ++i) {
    workers_.push_back(std::make_unique<Worker>());
  }
}

WorkerLink* SandboxedLibrary::pick(event::Dispatcher& dispatcher) {
  const size_t slot = stats::threadSlot();
  const size_t index = slot == 0 || slot - 1 >= workers_.size() ? 0 : slot - 1;
  Worker& w = *workers_[index];
  if (w.dispatcher.load(std::memory_order_acquire) == nullptr) {
    w.dispatcher.store(&dispatcher, std::memory_order_release);
  }
  if (w.posted.load(std::memory_order_acquire) != w.seen) {
    sync(w);
  }
  // The first `processes` live links of the current generation take streams; the rest are
  // warm spares (and an older generation only finishes what it has).
  const uint32_t gen = generation_.load(std::memory_order_acquire);
  auto usable = [gen](const WorkerLink& l) { return !l.dead() && l.generation() == gen; };
  size_t active = 0;
  for (const auto& l : w.links) {
    if (usable(*l)) {
      ++active;
    }
  }
  active = std::min<size_t>(active, options_.processes);
  if (active == 0) {
    return nullptr;
  }
  const size_t want = w.next++ % active;
  size_t k = 0;
  for (const auto& l : w.links) {
    if (usable(*l) && k++ == want) {
      return l.get();
    }
  }
  return nullptr;
}

void SandboxedLibrary::sync(Worker& w) {
  std::vector<Update> updates;
  {
    std::lock_guard<std::mutex> lock(w.mu);
    updates.swap(w.inbox);
    w.seen = w.posted.load(std::memory_order_acquire);
  }
  event::Dispatcher* d = w.dispatcher.load(std::memory_order_acquire);
  for (auto& u : updates) {
    if (u.add) {
      auto link = std::make_unique<WorkerLink>(*this, *d, u.pid, u.slot, u.generation,
                                               std::move(u.channel), std::move(u.in_flight));
      auto at = w.links.begin();
      while (at != w.links.end() && (*at)->slot() < u.slot) {
        ++at;
      }
      w.links.insert(at, std::move(link));
      continue;
    }
    for (auto it = w.links.begin(); it != w.links.end(); ++it) {
      if ((*it)->pid() == u.pid) {
        (*it)->fail(u.reason);
        // Freed from the loop, never here: sync() may run inside this very link's callback
        // (an action completes a response, the connection starts its next request, which
        // picks a process).
        w.retired.push_back(std::move(*it));
        w.links.erase(it);
        d->post([&w] { w.retired.clear(); });
        break;
      }
    }
  }
}

void SandboxedLibrary::push(Update u) {
  for (auto& w : workers_) {
    deliver(*w, u);
  }
}

void SandboxedLibrary::deliver(Worker& w, Update u) {
  {
    std::lock_guard<std::mutex> lock(w.mu);
    w.inbox.push_back(std::move(u));
    w.posted.fetch_add(1, std::memory_order_acq_rel);
  }
  // A worker that has streams knows its loop: tell it now (a death must fail its streams at
  // once). One that never had a stream picks the news up at its first.
  if (event::Dispatcher* d = w.dispatcher.load(std::memory_order_acquire)) {
    d->post([this, &w] {
      if (w.posted.load(std::memory_order_acquire) != w.seen) {
        sync(w);
      }
    });
  }
}

void SandboxedLibrary::onReady(size_t slot, pid_t pid, std::vector<std::shared_ptr<Channel>> data,
                               uint32_t generation) {
  if (data.size() != workers_.size()) {
    return;
  }
  bool& started = slot_started_[{generation, slot}];
  if (started) {
    counters_.restarts.inc();
    ++slot_restarts_[{generation, slot}];
  }
  started = true;
  auto in_flight = std::make_shared<std::atomic<uint32_t>>(0);
  live_[pid] = Live{pid, slot, generation, std::chrono::steady_clock::now(), in_flight};
  if (generation == generation_.load()) {
    ready_count_.fetch_add(1);
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    deliver(*workers_[i], Update{true, pid, slot, generation, data[i], in_flight, {}});
  }
}

void SandboxedLibrary::onExit(size_t slot, pid_t pid, const std::string& reason,
                              const std::string& first_line, bool killed) {
  stats_mirror_.forget(pid);
  auto it = live_.find(pid);
  const bool was_ready = it != live_.end();
  if (was_ready) {
    if (it->second.generation == generation_.load()) {
      ready_count_.fetch_sub(1);
    }
    live_.erase(it);
  } else {
    ++start_failures_;
  }
  std::string kind = "crash";
  if (killed) {
    kind = "killed";
    counters_.killed.inc();
  } else if (reason.find("out of memory") != std::string::npos ||
             reason.find("cannot allocate memory") != std::string::npos ||
             // The limit hit elsewhere first: the C++ host, or a new thread's stack.
             reason.find("bad_alloc") != std::string::npos ||
             reason.find("pthread_create failed") != std::string::npos) {
    kind = "oom";
    counters_.oom.inc();
  } else {
    counters_.crash.inc();
  }
  last_failures_[slot] = Failure{kind, reason, first_line};
  push(Update{false, pid, slot, 0, nullptr, nullptr, reason});
}

void SandboxedLibrary::switchTo(uint32_t generation, std::string path) {
  uint32_t ready = 0;
  for (const auto& [pid, l] : live_) {
    ready += l.generation == generation ? 1 : 0;
  }
  path_ = std::move(path);
  ready_count_.store(ready);
  generation_.store(generation, std::memory_order_release);  // pick() reads it per stream
}

uint32_t SandboxedLibrary::inFlight(uint32_t generation) const {
  uint32_t n = 0;
  for (const auto& [pid, l] : live_) {
    if (l.generation == generation) {
      n += l.in_flight->load();
    }
  }
  return n;
}

void SandboxedLibrary::retire(uint32_t generation) {
  for (auto it = live_.begin(); it != live_.end();) {
    if (it->second.generation != generation) {
      ++it;
      continue;
    }
    stats_mirror_.forget(it->first);
    push(Update{false, it->first, it->second.slot, generation, nullptr, nullptr,
                "reloaded: the old library's process was stopped"});
    it = live_.erase(it);
  }
}

void SandboxedLibrary::killProcess(pid_t pid, const std::string& reason) {
  main_.post([this, pid, reason] {
    if (supervisor_ != nullptr) {
      supervisor_->kill(id_, pid, reason);
    }
  });
}

void SandboxedLibrary::dropLinks() {
  for (auto& w : workers_) {
    for (auto& l : w->links) {
      l->fail("shutting down");
    }
    w->links.clear();
    w->retired.clear();
    w->dispatcher.store(nullptr);
  }
}

std::vector<SandboxedLibrary::ProcessInfo> SandboxedLibrary::liveProcesses() const {
  std::vector<ProcessInfo> out;
  for (const auto& [pid, l] : live_) {
    if (l.generation == generation_.load()) {
      out.push_back({pid, l.slot, l.started, l.in_flight->load()});
    }
  }
  return out;
}

}  // namespace corral::sandbox
