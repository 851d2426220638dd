// Micro-benchmark (not a test): round trips over the sandbox channel between two processes,
// the unit the sandbox mode pays per event. The child echoes each message; the parent measures
// send-to-answer. Two ways to wait: spin briefly before sleeping on the eventfd (the default),
// and sleep at once (every message then costs a cross-process wake-up).
//
// Usage: channel_bench [round-trips] [cpu-of-parent cpu-of-child]; prints p50/p99 in ns.

#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "source/sandbox/channel.h"

using corral::sandbox::Channel;
using corral::sandbox::Message;
using corral::sandbox::RingReader;
using corral::sandbox::RingWriter;

namespace {

void pin(int cpu) {
  if (cpu < 0) {
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

// Reads one message, waiting the given way.
bool readOne(RingReader& in, Message* m, int spins) {
  for (;;) {
    const auto res = in.read(m);
    if (res == RingReader::Result::Message) {
      return true;
    }
    if (res == RingReader::Result::Corrupt) {
      return false;
    }
    if (!in.prepareToWait(spins)) {
      pollfd p{in.wakeFd(), POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) {
        return false;
      }
    }
    in.doneWaiting();
  }
}

void run(long n, int spins, int cpu_parent, int cpu_child, const char* label) {
  auto ch = Channel::create(1 << 16);
  if (!ch.ok()) {
    std::fprintf(stderr, "%s\n", std::string(ch.status().message()).c_str());
    std::exit(1);
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    pin(cpu_child);
    RingReader in = (*ch)->sandboxReader(1 << 20);
    RingWriter out = (*ch)->sandboxWriter();
    Message m;
    while (readOne(in, &m, spins) && m.type != 0) {
      out.write(m.type, m.payload);
    }
    ::_exit(0);
  }
  pin(cpu_parent);
  RingWriter out = (*ch)->proxyWriter();
  RingReader in = (*ch)->proxyReader(1 << 20);
  std::vector<double> ns;
  ns.reserve(n);
  const std::string payload(256, 'e');  // about a small event: a few headers
  Message m;
  for (long i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    out.write(1, payload);
    if (!readOne(in, &m, spins)) {
      std::fprintf(stderr, "no answer\n");
      break;
    }
    ns.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
  }
  out.write(0, "");
  ::waitpid(pid, nullptr, 0);
  std::sort(ns.begin(), ns.end());
  std::printf("%-34s p50 %7.0f ns  p99 %7.0f ns  (%zu round trips, parent cpu %d, child cpu %d)\n",
              label, ns[ns.size() / 2], ns[ns.size() * 99 / 100], ns.size(), cpu_parent, cpu_child);
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 200000;
  const int cpu_parent = argc > 3 ? std::atoi(argv[2]) : 0;
  const int cpu_child = argc > 3 ? std::atoi(argv[3]) : 1;
  run(n, RingReader::kSpinChecks, cpu_parent, cpu_child, "spin, then eventfd (default)");
  run(n / 10, 0, cpu_parent, cpu_child, "eventfd wake-up every message");
  run(n / 10, 0, cpu_parent, cpu_parent, "eventfd, both on one core");
  return 0;
}
