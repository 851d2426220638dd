#include "source/common/stats.h"

#include <fmt/format.h>

namespace corral::stats {
namespace {

struct PromName {
  std::string name;
  std::string labels;
};

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    out.push_back((std::isalnum(static_cast<unsigned char>(c)) != 0) ? c : '_');
  }
  return out;
}

std::string escapeLabel(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
    }
    out.push_back(c == '\n' ? ' ' : c);
  }
  return out;
}

// "cluster.foo.upstream_rq_total" -> envoy_cluster_upstream_rq_total{envoy_cluster_name="foo"}.
PromName promName(const std::string& full) {
  struct Rule {
    std::string_view prefix;
    std::string_view label;
  };
  static constexpr Rule kRules[] = {{"http.", "envoy_http_conn_manager_prefix"},
                                    {"cluster.", "envoy_cluster_name"},
                                    {"listener.", "envoy_listener_address"}};
  for (const auto& rule : kRules) {
    if (full.rfind(rule.prefix, 0) != 0) {
      continue;
    }
    const size_t start = rule.prefix.size();
    const size_t dot = full.find('.', start);
    if (dot == std::string::npos) {
      break;
    }
    std::string base(rule.prefix.substr(0, rule.prefix.size() - 1));
    return {"envoy_" + sanitize(base + "_" + full.substr(dot + 1)),
            fmt::format("{{{}=\"{}\"}}", rule.label, escapeLabel(full.substr(start, dot - start)))};
  }
  return {"envoy_" + sanitize(full), ""};
}
}  // namespace

void setThreadSlot(size_t slot) {
  tls_stats_slot = slot < kMaxSlots ? slot : 0;
}

uint64_t Counter::value() const {
  uint64_t sum = 0;
  for (const auto& s : slots_) {
    sum += s.v.load(std::memory_order_relaxed);
  }
  return sum;
}

int64_t Gauge::value() const {
  int64_t sum = 0;
  for (const auto& s : slots_) {
    sum += s.v.load(std::memory_order_relaxed);
  }
  return sum;
}

Counter& Store::counter(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = counters_[name];
  if (!slot) {
    slot = std::make_unique<Counter>();
  }
  return *slot;
}

Gauge& Store::gauge(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = gauges_[name];
  if (!slot) {
    slot = std::make_unique<Gauge>();
  }
  return *slot;
}

void Histogram::record(uint64_t value) {
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (static_cast<double>(value) <= kBounds[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void Histogram::merge(uint64_t count, uint64_t sum,
                      const std::array<uint64_t, kBounds.size()>& buckets) {
  for (size_t i = 0; i < kBounds.size(); ++i) {
    buckets_[i].fetch_add(buckets[i], std::memory_order_relaxed);
  }
  count_.fetch_add(count, std::memory_order_relaxed);
  sum_.fetch_add(sum, std::memory_order_relaxed);
}

void Store::forEach(
    const std::function<void(const std::string&, const Counter&)>& counters,
    const std::function<void(const std::string&, const Gauge&)>& gauges,
    const std::function<void(const std::string&, const Histogram&)>& histograms) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, c] : counters_) {
    counters(name, *c);
  }
  for (const auto& [name, g] : gauges_) {
    gauges(name, *g);
  }
  for (const auto& [name, h] : histograms_) {
    histograms(name, *h);
  }
}

Histogram& Store::histogram(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& h = histograms_[name];
  if (!h) {
    h = std::make_unique<Histogram>();
  }
  return *h;
}

std::vector<std::pair<std::string, int64_t>> Store::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, int64_t> all;
  for (const auto& [name, counter] : counters_) {
    all[name] = static_cast<int64_t>(counter->value());
  }
  for (const auto& [name, gauge] : gauges_) {
    all[name] = gauge->value();
  }
  return {all.begin(), all.end()};
}

std::string Store::renderText() const {
  std::string out;
  for (const auto& [name, value] : snapshot()) {
    out += fmt::format("{}: {}\n", name, value);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, h] : histograms_) {
    out += fmt::format("{}: count={} sum={}\n", name, h->count(), h->sum());
  }
  return out;
}

std::string Store::renderPrometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  // Group samples by metric name so each # TYPE line appears once.
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> metrics;
  for (const auto& [name, c] : counters_) {
    auto p = promName(name);
    auto& m = metrics[p.name];
    m.first = "counter";
    m.second.push_back(fmt::format("{}{} {}", p.name, p.labels, c->value()));
  }
  for (const auto& [name, g] : gauges_) {
    auto p = promName(name);
    auto& m = metrics[p.name];
    m.first = "gauge";
    m.second.push_back(fmt::format("{}{} {}", p.name, p.labels, g->value()));
  }
  for (const auto& [name, h] : histograms_) {
    auto p = promName(name);
    auto& m = metrics[p.name];
    m.first = "histogram";
    // {a="b"} + le -> {a="b",le="x"}
    auto withLe = [&](const std::string& le) {
      return p.labels.empty()
                 ? fmt::format("{{le=\"{}\"}}", le)
                 : fmt::format("{},le=\"{}\"}}", p.labels.substr(0, p.labels.size() - 1), le);
    };
    uint64_t cumulative = 0;
    for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      cumulative += h->bucket(i);
      m.second.push_back(fmt::format("{}_bucket{} {}", p.name,
                                     withLe(fmt::format("{}", Histogram::kBounds[i])), cumulative));
    }
    m.second.push_back(fmt::format("{}_bucket{} {}", p.name, withLe("+Inf"), h->count()));
    m.second.push_back(fmt::format("{}_sum{} {}", p.name, p.labels, h->sum()));
    m.second.push_back(fmt::format("{}_count{} {}", p.name, p.labels, h->count()));
  }
  std::string out;
  for (const auto& [name, m] : metrics) {
    out += fmt::format("# TYPE {} {}\n", name, m.first);
    for (const auto& line : m.second) {
      out += line;
      out += '\n';
    }
  }
  return out;
}

}  // namespace corral::stats
