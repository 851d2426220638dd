#pragma once
// Counters and gauges, named the way Envoy names them ("http.ingress.downstream_rq_total").
//
// Thread-safety: a Store is created and filled on the main thread before workers start; after
// that only values change. Every worker thread registers a slot (Stats::setThreadSlot) and adds
// into its own cache line, so the data path never writes a cache line another worker writes.
// Readers (the admin endpoint) sum the slots.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace corral::stats {

constexpr size_t kMaxSlots = 64;  // slot 0: main thread and anything unregistered

void setThreadSlot(size_t slot);
size_t threadSlot();

class Counter {
public:
  void inc(uint64_t n = 1) { slots_[threadSlot()].v.fetch_add(n, std::memory_order_relaxed); }
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
  void inc(int64_t n = 1) { slots_[threadSlot()].v.fetch_add(n, std::memory_order_relaxed); }
  void dec(int64_t n = 1) { slots_[threadSlot()].v.fetch_sub(n, std::memory_order_relaxed); }
  int64_t value() const;

private:
  struct alignas(64) Slot {
    std::atomic<int64_t> v{0};
  };
  std::array<Slot, kMaxSlots> slots_;
};

class Store {
public:
  // Returns the counter or gauge with this full name, creating it on first use. Safe from any
  // thread (takes a lock); hold the reference, do not call it per request.
  Counter& counter(const std::string& name);
  Gauge& gauge(const std::string& name);

  // Envoy's text format: "name: value" per line, sorted by name.
  std::string renderText() const;
  // Prometheus exposition format with Envoy's tag extraction for http.<prefix>. and
  // cluster.<name>. stats.
  std::string renderPrometheus() const;

private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>> counters_;
  std::map<std::string, std::unique_ptr<Gauge>> gauges_;
};

}  // namespace corral::stats
