#include "source/sandbox/pool.h"

#include <signal.h>

#include <map>

#include <gtest/gtest.h>

namespace corral::sandbox {
namespace {

using std::chrono::milliseconds;

// A launcher whose processes are bookkeeping: tests decide when they die and how.
class FakeLauncher : public Launcher {
public:
  absl::StatusOr<Spawned> spawn(const SpawnSpec&) override {
    if (fail_spawns > 0) {
      --fail_spawns;
      return absl::ResourceExhaustedError("fork: no");
    }
    const pid_t pid = next_pid++;
    alive[pid] = true;
    return Spawned{pid, -1};
  }
  void kill(pid_t pid, int signal) override {
    if (alive.count(pid) != 0) {
      exits[pid] = ExitInfo{true, signal};
      alive.erase(pid);
    }
  }
  std::optional<ExitInfo> reap(pid_t pid) override {
    auto it = exits.find(pid);
    if (it == exits.end()) {
      return std::nullopt;
    }
    ExitInfo info = it->second;
    exits.erase(it);
    return info;
  }
  // The process dies on its own.
  void die(pid_t pid, ExitInfo info) {
    alive.erase(pid);
    exits[pid] = info;
  }

  pid_t next_pid = 100;
  int fail_spawns = 0;
  std::map<pid_t, bool> alive;
  std::map<pid_t, ExitInfo> exits;
};

class PoolTest : public ::testing::Test {
protected:
  Pool makePool(PoolOptions o) {
    return Pool(
        launcher_, [](size_t) { return SpawnSpec{}; }, o);
  }
  FakeLauncher launcher_;
  Clock::time_point t0_ = Clock::time_point() + std::chrono::hours(1);
};

TEST_F(PoolTest, StartsEverySlot) {
  PoolOptions o;
  o.processes = 3;
  Pool pool = makePool(o);
  pool.start(t0_);
  EXPECT_EQ(launcher_.alive.size(), 3u);
  EXPECT_EQ(pool.counters().starts, 3u);
  EXPECT_FALSE(pool.nextDeadline());
}

TEST_F(PoolTest, RestartsWithExponentialBackoff) {
  PoolOptions o;
  o.restart_base = milliseconds(10);
  o.restart_max = milliseconds(60);
  o.breaker_failures = 100;
  Pool pool = makePool(o);
  pool.start(t0_);
  auto now = t0_;
  std::vector<long> delays;
  for (int i = 0; i < 5; ++i) {
    const pid_t pid = pool.slots()[0].process.pid;
    launcher_.die(pid, ExitInfo{true, SIGSEGV});
    ASSERT_EQ(pool.onExit(pid, now), 0u);
    auto next = pool.nextDeadline();
    ASSERT_TRUE(next);
    delays.push_back(std::chrono::duration_cast<milliseconds>(*next - now).count());
    pool.advance(*next - milliseconds(1));  // not yet
    EXPECT_EQ(pool.slots()[0].state, Pool::SlotState::BackingOff);
    now = *next;
    pool.advance(now);
    EXPECT_EQ(pool.slots()[0].state, Pool::SlotState::Running);
  }
  EXPECT_EQ(delays, (std::vector<long>{10, 20, 40, 60, 60}));
  EXPECT_EQ(pool.counters().crashes, 5u);
  EXPECT_EQ(pool.counters().restarts, 5u);
  EXPECT_EQ(pool.slots()[0].last_exit->code, SIGSEGV);
}

TEST_F(PoolTest, AHealthyRunResetsTheBackoff) {
  PoolOptions o;
  o.restart_base = milliseconds(10);
  o.healthy_after = milliseconds(1000);
  Pool pool = makePool(o);
  pool.start(t0_);
  pid_t pid = pool.slots()[0].process.pid;
  launcher_.die(pid, ExitInfo{false, 3});
  pool.onExit(pid, t0_);
  pool.advance(t0_ + milliseconds(10));
  pid = pool.slots()[0].process.pid;
  const auto later = t0_ + milliseconds(5000);  // lived long enough
  launcher_.die(pid, ExitInfo{false, 3});
  pool.onExit(pid, later);
  EXPECT_EQ(*pool.nextDeadline() - later, milliseconds(10));
  EXPECT_EQ(pool.counters().exits, 2u);
}

TEST_F(PoolTest, AProcessThatDiesAfterItWasReadyIsReplacedEveryTime) {
  // A plugin that crashes on a request (not on start): no breaker, no growing backoff.
  PoolOptions o;
  o.restart_base = milliseconds(10);
  o.breaker_failures = 5;
  o.breaker_window = milliseconds(10000);
  Pool pool = makePool(o);
  pool.start(t0_);
  auto now = t0_;
  for (int i = 0; i < 50; ++i) {
    const pid_t pid = pool.slots()[0].process.pid;
    pool.markReady(pid);
    launcher_.die(pid, ExitInfo{true, SIGABRT});
    pool.onExit(pid, now);
    EXPECT_EQ(*pool.nextDeadline() - now, milliseconds(10)) << i;
    now += milliseconds(10);
    pool.advance(now);
    ASSERT_EQ(pool.slots()[0].state, Pool::SlotState::Running) << i;
  }
  EXPECT_EQ(pool.counters().breaker_opened, 0u);
  EXPECT_EQ(pool.counters().restarts, 50u);
}

TEST_F(PoolTest, CrashOnStartOpensTheBreakerInsteadOfAForkLoop) {
  PoolOptions o;
  o.restart_base = milliseconds(1);
  o.restart_max = milliseconds(1);
  o.breaker_failures = 5;
  o.breaker_window = milliseconds(1000);
  o.breaker_cooldown = milliseconds(30000);
  Pool pool = makePool(o);
  pool.start(t0_);
  auto now = t0_;
  // Every start dies at once; run the loop for 10 simulated seconds.
  while (now < t0_ + milliseconds(10000)) {
    const auto& slot = pool.slots()[0];
    if (slot.state == Pool::SlotState::Running) {
      launcher_.die(slot.process.pid, ExitInfo{true, SIGABRT});
      pool.onExit(slot.process.pid, now);
    }
    auto next = pool.nextDeadline();
    ASSERT_TRUE(next);
    if (*next >= t0_ + milliseconds(10000)) {
      break;  // nothing more to do in the ten seconds
    }
    now = std::max(now + milliseconds(1), *next);
    pool.advance(now);
  }
  // Five starts, then the breaker holds for the cool-down: no fork loop.
  EXPECT_EQ(pool.counters().starts, 5u);
  EXPECT_EQ(pool.counters().breaker_opened, 1u);
  EXPECT_EQ(pool.slots()[0].state, Pool::SlotState::Broken);
  // After the cool-down it tries again.
  pool.advance(t0_ + milliseconds(31000));
  EXPECT_EQ(pool.slots()[0].state, Pool::SlotState::Running);
}

TEST_F(PoolTest, SpawnFailureIsRetried) {
  launcher_.fail_spawns = 2;
  PoolOptions o;
  o.restart_base = milliseconds(5);
  Pool pool = makePool(o);
  pool.start(t0_);
  EXPECT_EQ(pool.counters().spawn_errors, 1u);
  pool.advance(t0_ + milliseconds(5));
  EXPECT_EQ(pool.counters().spawn_errors, 2u);
  pool.advance(t0_ + milliseconds(100));
  EXPECT_EQ(pool.slots()[0].state, Pool::SlotState::Running);
}

TEST_F(PoolTest, UnknownOrLivePidsAreIgnored) {
  Pool pool = makePool(PoolOptions{});
  pool.start(t0_);
  EXPECT_FALSE(pool.onExit(4242, t0_));
  EXPECT_FALSE(pool.onExit(pool.slots()[0].process.pid, t0_));  // not exited: spurious
  EXPECT_EQ(pool.slots()[0].state, Pool::SlotState::Running);
}

TEST_F(PoolTest, StopKillsAndReapsEverything) {
  PoolOptions o;
  o.processes = 2;
  Pool pool = makePool(o);
  pool.start(t0_);
  pool.stop();
  EXPECT_TRUE(launcher_.alive.empty());
  EXPECT_TRUE(launcher_.exits.empty());  // reaped
  pool.advance(t0_ + std::chrono::hours(1));
  EXPECT_EQ(pool.counters().starts, 2u);  // nothing restarted
}

}  // namespace
}  // namespace corral::sandbox
