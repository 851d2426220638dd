#pragma once
// The supervision of one plugin library's sandbox processes: start `processes` of them, notice
// each death, restart with exponential backoff, and stop restarting (circuit breaker) when they
// keep dying — a plugin that crashes on start must not become a fork loop.
//
// The pool is pure logic over the Launcher seam and a caller-supplied clock: the owner tells it
// when a process exited (its pidfd became readable) and calls advance() at nextDeadline(). So
// every failure path is unit-testable with a fake launcher and no sleeping.
//
// Thread-safety: one thread (the main thread's event loop).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "source/sandbox/launcher.h"

namespace corral::sandbox {

using Clock = std::chrono::steady_clock;

struct PoolOptions {
  uint32_t processes = 1;
  std::chrono::milliseconds restart_base{10};  // first restart delay; doubles per failure
  std::chrono::milliseconds restart_max{5000};
  // Breaker: this many failures within the window stop restarts for the cool-down.
  uint32_t breaker_failures = 5;
  std::chrono::milliseconds breaker_window{10000};
  std::chrono::milliseconds breaker_cooldown{30000};
  // A process that lived this long resets its slot's backoff.
  std::chrono::milliseconds healthy_after{5000};
};

struct PoolCounters {
  uint64_t starts = 0;
  uint64_t restarts = 0;
  uint64_t crashes = 0;  // ended by a signal
  uint64_t exits = 0;    // ended with an exit status
  uint64_t spawn_errors = 0;
  uint64_t breaker_opened = 0;
};

class Pool {
public:
  // `spec` builds the spawn spec for a slot (a fresh channel each time).
  Pool(Launcher& launcher, std::function<SpawnSpec(size_t slot)> spec, PoolOptions options);

  enum class SlotState { Running, BackingOff, Broken, Stopped };
  struct Slot {
    SlotState state = SlotState::BackingOff;
    Spawned process;
    Clock::time_point started;
    Clock::time_point restart_at;
    uint32_t consecutive_failures = 0;
    bool ready = false;  // the process said it was ready (markReady)
    std::optional<ExitInfo> last_exit;
  };

  // Starts every slot now.
  void start(Clock::time_point now);
  // A process of ours has exited (its pidfd is readable): reap it, schedule the restart.
  // Returns the slot it ran in, or nullopt for a pid the pool does not know.
  std::optional<size_t> onExit(pid_t pid, Clock::time_point now);
  // The process finished starting (loaded its library and config). When a ready process dies
  // its slot restarts after the base delay and the breaker does not count it: the breaker is
  // for processes that cannot start; one that dies of a request is replaced at once, each time.
  void markReady(pid_t pid);
  // Restarts what is due. Call at nextDeadline() (or any time).
  void advance(Clock::time_point now);
  std::optional<Clock::time_point> nextDeadline() const;
  // Kills every process (SIGKILL), reaps it (waiting up to a second each) and starts no more.
  void stop();

  const std::vector<Slot>& slots() const { return slots_; }
  const PoolCounters& counters() const { return counters_; }
  bool breakerOpen(Clock::time_point now) const { return now < breaker_until_; }

private:
  void startSlot(size_t i, Clock::time_point now);
  void scheduleRestart(size_t i, Clock::time_point now, bool count_failure = true);

  Launcher& launcher_;
  std::function<SpawnSpec(size_t)> spec_;
  PoolOptions options_;
  std::vector<Slot> slots_;
  std::vector<Clock::time_point> recent_failures_;
  Clock::time_point breaker_until_{};
  PoolCounters counters_;
};

}  // namespace corral::sandbox
