// Micro-benchmark (not a test): how long a plugin library is without a process after a crash —
// from SIGKILL of its sandbox process to the replacement saying Ready (fork, exec, seccomp, the
// Go runtime's start and the plugin's init), without a warm spare and with no restart delay.
//
// Usage: restart_bench <corral-sandbox> <plugin.so> [rounds]; prints p50/p90/max in ms.

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "source/event/dispatcher.h"
#include "source/sandbox/supervisor.h"

using corral::sandbox::Clock;
using corral::sandbox::LibraryOptions;
using corral::sandbox::PosixLauncher;
using corral::sandbox::Supervisor;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <corral-sandbox> <plugin.so> [rounds]\n", argv[0]);
    return 2;
  }
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 30;
  corral::event::Dispatcher dispatcher;
  PosixLauncher launcher;
  Supervisor supervisor(dispatcher, launcher);
  LibraryOptions o;
  o.library_id = "bench";
  o.library_path = argv[2];
  o.sandbox_binary = argv[1];
  o.pool.processes = 1;
  o.pool.restart_base = std::chrono::milliseconds(0);
  o.pool.breaker_failures = 1000000;
  o.heartbeat_interval = std::chrono::milliseconds(1000);
  if (auto s = supervisor.addLibrary(o); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::vector<double> ms;
  pid_t last = -1;
  Clock::time_point killed{};
  int round = -1;  // -1: waiting for the first start
  auto poll = dispatcher.createTimer([] {});
  poll = dispatcher.createTimer([&] {
    const auto p = supervisor.processes("bench")[0];
    if (p.ready && p.pid != last) {
      if (round >= 0) {
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - killed).count());
      }
      if (++round == rounds) {
        dispatcher.exit();
        return;
      }
      last = p.pid;
      killed = Clock::now();
      ::kill(p.pid, SIGKILL);
    }
    poll->enable(std::chrono::milliseconds(0));
  });
  poll->enable(std::chrono::milliseconds(0));
  dispatcher.run();
  supervisor.stop();
  std::sort(ms.begin(), ms.end());
  std::printf(
      "sandbox death -> replacement Ready (no warm spare): p50 %.1f ms, p90 %.1f ms, "
      "max %.1f ms over %zu restarts\n",
      ms[ms.size() / 2], ms[ms.size() * 9 / 10], ms.back(), ms.size());
  return 0;
}
