#pragma once
// Counters and gauges, named the way Envoy names them ("http.ingress.downstream_rq_total").
//
// Thread-safety: a Store is created and filled on the main thread before workers start; after
// that only values change. Every worker thread registers a slot (Stats::setThreadSlot) and adds
// into its own cache line, so the data path never writes a cache line another worker writes.
// Readers (the admin endpoint) sum the slots.

#include <array>
#include <functional>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace corral::stats {

constexpr size_t kMaxSlots = 64;  // slot 0: main thread and anything unregistered

// Each worker thread takes its own slot (1..kMaxSlots-1) before touching stats.
void setThreadSlot(size_t slot);
inline thread_local size_t tls_stats_slot = 0;
inline size_t threadSlot() {
  return tls_stats_slot;
}

// Slot 0 may be written by several threads (main and unregistered ones) and uses atomic adds;
// a worker's slot has one writer, so a plain load and store (no locked instruction) suffices.
template <class T>
inline void addToSlot(std::atomic<T>& v, size_t slot, T n) {
  if (slot == 0) {
    v.fetch_add(n, std::memory_order_relaxed);
  } else {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
}

class Counter {
public:
  void inc(uint64_t n = 1) {
    const size_t s = threadSlot();
    addToSlot(slots_[s].v, s, n);
  }
  uint64_t value() const;

private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> v{0};
  };
  std::array<Slot, kMaxSlots> slots_;
};

// A gauge may go up on one thread and down on another; the per-slot values are signed and only
// their sum is meaningful.
class Gauge {
public:
  void inc(int64_t n = 1) {
    const size_t s = threadSlot();
    addToSlot(slots_[s].v, s, n);
  }
  void dec(int64_t n = 1) {
    const size_t s = threadSlot();
    addToSlot(slots_[s].v, s, -n);
  }
  int64_t value() const;

private:
  struct alignas(64) Slot {
    std::atomic<int64_t> v{0};
  };
  std::array<Slot, kMaxSlots> slots_;
};

// A distribution of recorded values (Envoy's histogram with its default bucket bounds). Values
// may be recorded from any thread; the admin endpoint reads the sums.
class Histogram {
public:
  static constexpr std::array<double, 19> kBounds = {
      0.5,  1,    5,     10,    25,    50,     100,    250,     500,    1000,
      2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};
  void record(uint64_t value);
  // Adds what another histogram recorded (the sandbox processes' plugin histograms).
  void merge(uint64_t count, uint64_t sum, const std::array<uint64_t, kBounds.size()>& buckets);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t sum() const { return sum_.load(std::memory_order_relaxed); }
  // Count of values <= kBounds[i] (not cumulative).
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }

private:
  std::array<std::atomic<uint64_t>, kBounds.size()> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
};

class Store {
public:
  // Returns the counter or gauge with this full name, creating it on first use. Safe from any
  // thread (takes a lock); hold the reference, do not call it per request.
  Counter& counter(const std::string& name);
  Gauge& gauge(const std::string& name);
  Histogram& histogram(const std::string& name);

  // Every counter and gauge with its current value, sorted by name.
  std::vector<std::pair<std::string, int64_t>> snapshot() const;
  // Each kind on its own, for forwarding (sandbox processes), in name order.
  void forEach(const std::function<void(const std::string&, const Counter&)>& counters,
               const std::function<void(const std::string&, const Gauge&)>& gauges,
               const std::function<void(const std::string&, const Histogram&)>& histograms) const;
  // Envoy's text format: "name: value" per line, sorted by name; histograms as
  // "name: count=N sum=S".
  std::string renderText() const;
  // Prometheus exposition format with Envoy's tag extraction for http.<prefix>. and
  // cluster.<name>. stats.
  std::string renderPrometheus() const;

private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>> counters_;
  std::map<std::string, std::unique_ptr<Gauge>> gauges_;
  std::map<std::string, std::unique_ptr<Histogram>> histograms_;
};

}  // namespace corral::stats
