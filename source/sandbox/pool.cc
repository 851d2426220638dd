#include "source/sandbox/pool.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "source/common/logger.h"

namespace corral::sandbox {

Pool::Pool(Launcher& launcher, std::function<SpawnSpec(size_t)> spec, PoolOptions options)
    : launcher_(launcher),
      spec_(std::move(spec)),
      options_(options),
      slots_(std::max<uint32_t>(options.processes, 1)) {}

void Pool::start(Clock::time_point now) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    startSlot(i, now);
  }
}

void Pool::startSlot(size_t i, Clock::time_point now) {
  Slot& slot = slots_[i];
  auto spawned = launcher_.spawn(spec_(i));
  if (!spawned.ok()) {
    ++counters_.spawn_errors;
    CORRAL_LOG(err, "sandbox: slot {}: {}", i, std::string(spawned.status().message()));
    scheduleRestart(i, now);
    return;
  }
  ++counters_.starts;
  slot.process = *spawned;
  slot.ready = false;
  slot.state = SlotState::Running;
  slot.started = now;
}

std::optional<size_t> Pool::onExit(pid_t pid, Clock::time_point now) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (slot.state != SlotState::Running || slot.process.pid != pid) {
      continue;
    }
    auto info = launcher_.reap(pid);
    if (!info) {
      return std::nullopt;  // not exited after all (a spurious wake-up)
    }
    if (slot.process.pidfd >= 0) {
      ::close(slot.process.pidfd);
    }
    slot.process = {};
    slot.last_exit = info;
    if (info->signaled) {
      ++counters_.crashes;
    } else {
      ++counters_.exits;
    }
    if (slot.ready || now - slot.started >= options_.healthy_after) {
      slot.consecutive_failures = 0;  // it had been fine: restart after the base delay
    }
    scheduleRestart(i, now, !slot.ready);
    slot.ready = false;
    return i;
  }
  return std::nullopt;
}

void Pool::markReady(pid_t pid) {
  for (Slot& slot : slots_) {
    if (slot.state == SlotState::Running && slot.process.pid == pid) {
      slot.ready = true;
      slot.consecutive_failures = 0;
    }
  }
}

void Pool::scheduleRestart(size_t i, Clock::time_point now, bool count_failure) {
  Slot& slot = slots_[i];
  // The breaker counts failures across the pool within the window.
  if (count_failure) {
    recent_failures_.push_back(now);
  }
  recent_failures_.erase(
      std::remove_if(recent_failures_.begin(), recent_failures_.end(),
                     [&](Clock::time_point t) { return now - t > options_.breaker_window; }),
      recent_failures_.end());
  if (recent_failures_.size() >= options_.breaker_failures && !breakerOpen(now)) {
    breaker_until_ = now + options_.breaker_cooldown;
    ++counters_.breaker_opened;
    recent_failures_.clear();
    CORRAL_LOG(err, "sandbox: {} failures within {} ms: no restart for {} ms",
               options_.breaker_failures, options_.breaker_window.count(),
               options_.breaker_cooldown.count());
  }
  const uint32_t shift = std::min<uint32_t>(slot.consecutive_failures, 20);
  auto delay = options_.restart_base * (1u << shift);
  delay = std::min<std::chrono::milliseconds>(delay, options_.restart_max);
  slot.consecutive_failures++;
  slot.restart_at = std::max(now + delay, breaker_until_);
  slot.state = breakerOpen(now) ? SlotState::Broken : SlotState::BackingOff;
}

void Pool::advance(Clock::time_point now) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if ((slot.state == SlotState::BackingOff || slot.state == SlotState::Broken) &&
        now >= slot.restart_at && !breakerOpen(now)) {
      ++counters_.restarts;
      startSlot(i, now);
    }
  }
}

std::optional<Clock::time_point> Pool::nextDeadline() const {
  std::optional<Clock::time_point> next;
  for (const Slot& slot : slots_) {
    if (slot.state != SlotState::Running && (!next || slot.restart_at < *next)) {
      next = slot.restart_at;
    }
  }
  return next;
}

void Pool::stop() {
  for (Slot& slot : slots_) {
    if (slot.state == SlotState::Running) {
      launcher_.kill(slot.process.pid, SIGKILL);
      if (slot.process.pidfd >= 0) {
        pollfd p{slot.process.pidfd, POLLIN, 0};
        ::poll(&p, 1, 1000);
        ::close(slot.process.pidfd);
      }
      launcher_.reap(slot.process.pid);
      slot.process = {};
    }
    slot.state = SlotState::Stopped;
  }
}

}  // namespace corral::sandbox
