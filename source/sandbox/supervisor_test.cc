// The supervisor on a real event loop with real sandbox processes (corral-sandbox + Go plugins).
#include "source/sandbox/supervisor.h"

#include <signal.h>

#include <functional>

#include <gtest/gtest.h>

namespace corral::sandbox {
namespace {

using std::chrono::milliseconds;

class SupervisorTest : public ::testing::Test {
protected:
  // Runs the loop until `done` holds or 10 s pass; true if it held.
  bool runUntil(const std::function<bool()>& done) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    bool held = false;
    auto check = dispatcher_.createTimer([] {});
    std::function<void()> tick = [&] {
      held = done();
      if (held || Clock::now() > deadline) {
        dispatcher_.exit();
        return;
      }
      check->enable(milliseconds(5));
    };
    check = dispatcher_.createTimer([&] { tick(); });
    check->enable(milliseconds(0));
    dispatcher_.run();
    return held;
  }

  LibraryOptions options(const char* library, uint32_t processes) {
    LibraryOptions o;
    o.library_id = "lib";
    o.library_path = library;
    o.sandbox_binary = CORRAL_SANDBOX_BIN;
    o.pool.processes = processes;
    o.pool.restart_base = milliseconds(5);
    o.heartbeat_interval = milliseconds(50);
    return o;
  }

  bool allReady(Supervisor& s) {
    for (const auto& p : s.processes("lib")) {
      if (!p.ready) {
        return false;
      }
    }
    return true;
  }

  event::Dispatcher dispatcher_;
  PosixLauncher launcher_;
};

TEST_F(SupervisorTest, StartsReadyProcessesAndRestartsAKilledOne) {
  Supervisor s(dispatcher_, launcher_);
  ASSERT_TRUE(s.addLibrary(options(CORRAL_TEST_PLUGINS_SO, 2)).ok());
  ASSERT_TRUE(runUntil([&] { return allReady(s); }));
  const pid_t victim = s.processes("lib")[0].pid;
  ::kill(victim, SIGKILL);
  ASSERT_TRUE(runUntil([&] {
    auto p = s.processes("lib");
    return p[0].ready && p[0].pid != victim;
  }));
  EXPECT_EQ(s.counters("lib")->crashes, 1u);
  EXPECT_EQ(s.counters("lib")->restarts, 1u);
  EXPECT_EQ(s.processes("lib")[0].last_failure, "killed by signal 9");
  s.stop();
}

TEST_F(SupervisorTest, AHungProcessMissesItsHeartbeatsAndIsReplaced) {
  Supervisor s(dispatcher_, launcher_);
  ASSERT_TRUE(s.addLibrary(options(CORRAL_TEST_PLUGINS_SO, 1)).ok());
  ASSERT_TRUE(runUntil([&] { return allReady(s); }));
  const pid_t hung = s.processes("lib")[0].pid;
  ::kill(hung, SIGSTOP);  // alive, answering nothing
  ASSERT_TRUE(runUntil([&] {
    auto p = s.processes("lib");
    return p[0].ready && p[0].pid != hung;
  }));
  EXPECT_EQ(s.counters("lib")->crashes, 1u);  // SIGKILLed
  EXPECT_NE(s.processes("lib")[0].last_failure.find("heartbeat"), std::string::npos)
      << s.processes("lib")[0].last_failure;
  s.stop();
}

TEST_F(SupervisorTest, CrashOnLoadOpensTheBreakerAndKeepsTheReason) {
  Supervisor s(dispatcher_, launcher_);
  LibraryOptions o = options(CORRAL_CRASH_ON_LOAD_SO, 1);
  o.pool.breaker_failures = 3;
  o.pool.breaker_cooldown = std::chrono::seconds(60);
  ASSERT_TRUE(s.addLibrary(o).ok());
  ASSERT_TRUE(runUntil([&] { return s.counters("lib")->breaker_opened == 1; }));
  EXPECT_EQ(s.counters("lib")->starts, 3u);  // no fork loop
  EXPECT_EQ(s.processes("lib")[0].state, Pool::SlotState::Broken);
  EXPECT_EQ(s.processes("lib")[0].last_failure, "panic: crash on load (killed by signal 6)");
  s.stop();
}

TEST_F(SupervisorTest, AMissingLibraryIsAnError) {
  Supervisor s(dispatcher_, launcher_);
  auto status = s.addLibrary(options("/nonexistent/lib.so", 1));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("/nonexistent/lib.so"), std::string::npos);
}

}  // namespace
}  // namespace corral::sandbox
