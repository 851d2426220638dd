#include "source/sandbox/stats_forwarding.h"

#include "source/sandbox/wire.h"

namespace corral::sandbox {
namespace {

constexpr uint32_t kMaxEntries = 4096;
constexpr size_t kMaxNameLength = 256;

}  // namespace

std::string StatsReporter::changes() {
  std::vector<std::pair<std::string, uint64_t>> c;
  std::vector<std::pair<std::string, int64_t>> g;
  std::vector<std::pair<std::string, Hist>> h;
  store_.forEach(
      [&](const std::string& name, const stats::Counter& counter) {
        const uint64_t v = counter.value();
        auto [it, fresh] = counters_.try_emplace(name, 0);
        if (fresh || v != it->second) {
          c.emplace_back(name, v - it->second);  // a new counter shows even at zero
          it->second = v;
        }
      },
      [&](const std::string& name, const stats::Gauge& gauge) {
        const int64_t v = gauge.value();
        auto [it, fresh] = gauges_.try_emplace(name, v);
        if (fresh || it->second != v) {
          g.emplace_back(name, v);
          it->second = v;
        }
      },
      [&](const std::string& name, const stats::Histogram& hist) {
        Hist& last = histograms_[name];
        if (hist.count() == last.count) {
          return;
        }
        Hist d;
        d.count = hist.count() - last.count;
        d.sum = hist.sum() - last.sum;
        for (size_t i = 0; i < d.buckets.size(); ++i) {
          d.buckets[i] = hist.bucket(i) - last.buckets[i];
          last.buckets[i] = hist.bucket(i);
        }
        last.count = hist.count();
        last.sum = hist.sum();
        h.emplace_back(name, d);
      });
  if (c.empty() && g.empty() && h.empty()) {
    return {};
  }
  std::string out;
  WireWriter w(out);
  w.u32(static_cast<uint32_t>(c.size()));
  for (const auto& [name, d] : c) {
    w.bytes(name);
    w.u64(d);
  }
  w.u32(static_cast<uint32_t>(g.size()));
  for (const auto& [name, v] : g) {
    w.bytes(name);
    w.i64(v);
  }
  w.u32(static_cast<uint32_t>(h.size()));
  for (const auto& [name, d] : h) {
    w.bytes(name);
    w.u64(d.count);
    w.u64(d.sum);
    for (uint64_t b : d.buckets) {
      w.u64(b);
    }
  }
  return out;
}

bool StatsMirror::accept(const std::string& name) {
  auto it = names_.find(name);
  if (it != names_.end()) {
    return it->second;
  }
  // The proxy's own families stay the proxy's; a sandbox cannot make names without end.
  bool ok = names_.size() < kMaxNames && name.rfind("sandbox.", 0) != 0 &&
            name.rfind("server.", 0) != 0 && name.rfind("cluster.", 0) != 0 &&
            name.find(".downstream_") == std::string::npos;
  names_[name] = ok;
  return ok;
}

bool StatsMirror::apply(pid_t pid, std::string_view payload) {
  WireReader r(payload);
  auto name = [&r]() -> std::string {
    const std::string_view n = r.bytes();
    if (n.empty() || n.size() > kMaxNameLength) {
      r.bytes();  // poisons the reader: no such name is honest
      return {};
    }
    for (char ch : n) {
      if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f) {
        r.bytes();
        return {};
      }
    }
    return std::string(n);
  };
  // Parsed in full before anything is applied: a bad message changes nothing.
  std::vector<std::pair<std::string, uint64_t>> c;
  std::vector<std::pair<std::string, int64_t>> g;
  struct H {
    std::string name;
    uint64_t count, sum;
    std::array<uint64_t, stats::Histogram::kBounds.size()> buckets;
  };
  std::vector<H> h;
  uint32_t n = r.u32();
  for (uint32_t i = 0; r.ok() && i < n && n <= kMaxEntries; ++i) {
    std::string k = name();
    c.emplace_back(std::move(k), r.u64());
  }
  n = r.ok() && n <= kMaxEntries ? r.u32() : kMaxEntries + 1;
  for (uint32_t i = 0; r.ok() && i < n && n <= kMaxEntries; ++i) {
    std::string k = name();
    g.emplace_back(std::move(k), r.i64());
  }
  n = r.ok() && n <= kMaxEntries ? r.u32() : kMaxEntries + 1;
  for (uint32_t i = 0; r.ok() && i < n && n <= kMaxEntries; ++i) {
    H e{name(), r.u64(), r.u64(), {}};
    for (auto& b : e.buckets) {
      b = r.u64();
    }
    h.push_back(std::move(e));
  }
  if (n > kMaxEntries || !r.done()) {
    return false;
  }
  for (const auto& [k, d] : c) {
    if (accept(k)) {
      store_.counter(k).inc(d);
    }
  }
  auto& mine = gauges_[pid];
  for (const auto& [k, v] : g) {
    if (accept(k)) {
      int64_t& last = mine[k];
      store_.gauge(k).inc(v - last);
      last = v;
    }
  }
  for (const auto& e : h) {
    if (accept(e.name)) {
      store_.histogram(e.name).merge(e.count, e.sum, e.buckets);
    }
  }
  return true;
}

void StatsMirror::forget(pid_t pid) {
  auto it = gauges_.find(pid);
  if (it == gauges_.end()) {
    return;
  }
  for (const auto& [k, v] : it->second) {
    store_.gauge(k).dec(v);
  }
  gauges_.erase(it);
}

}  // namespace corral::sandbox
