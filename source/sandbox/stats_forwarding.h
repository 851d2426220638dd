#pragma once
// The stats a sandboxed plugin makes (its metrics, the Golang filter's panic_error & co.) live in
// the sandbox process's store; these two classes bring them into the proxy's, so /stats shows
// them as in in-process mode. The sandbox reports what changed (counters and histograms as
// deltas, gauges as values); the proxy adds counters and histograms up over every process that
// ever ran, and gauges over the live ones (a dead process's gauges are taken back).
//
// StatsUpdate payload: u32 n, n x {bytes name, u64 delta}; u32 m, m x {bytes name, i64 value};
// u32 k, k x {bytes name, u64 count, u64 sum, 19 x u64 bucket}.
//
// Thread-safety: StatsReporter on the sandbox's loop thread, StatsMirror on the proxy's main
// thread.

#include <sys/types.h>

#include <array>
#include <map>
#include <string>
#include <string_view>

#include "source/common/stats.h"

namespace corral::sandbox {

class StatsReporter {
public:
  explicit StatsReporter(const stats::Store& store) : store_(store) {}
  // What changed since the last call, as a StatsUpdate payload; empty if nothing did.
  std::string changes();

private:
  struct Hist {
    uint64_t count = 0, sum = 0;
    std::array<uint64_t, stats::Histogram::kBounds.size()> buckets{};
  };
  const stats::Store& store_;
  std::map<std::string, uint64_t> counters_;
  std::map<std::string, int64_t> gauges_;
  std::map<std::string, Hist> histograms_;
};

class StatsMirror {
public:
  explicit StatsMirror(stats::Store& store) : store_(store) {}
  // False if the payload is malformed (the process is then killed). Names the proxy keeps for
  // itself, or past the per-library cap, are ignored.
  bool apply(pid_t pid, std::string_view payload);
  // The process is gone: its gauges no longer count.
  void forget(pid_t pid);

  static constexpr size_t kMaxNames = 10000;

private:
  bool accept(const std::string& name);
  stats::Store& store_;
  std::map<pid_t, std::map<std::string, int64_t>> gauges_;
  std::map<std::string, bool> names_;  // seen, accepted
};

}  // namespace corral::sandbox
