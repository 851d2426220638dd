#pragma once
// Plugin configs of the Golang filter, as Envoy keeps them:
// - FilterConfig: one per http_filters[] entry (envoy.extensions.filters.http.golang.v3alpha
//   .Config). Creating it hands the serialised plugin_config to the Go SDK
//   (envoyGoFilterNewHttpPluginConfig), which calls the plugin's Parse; the returned id names the
//   parsed config in Go. It also owns the plugin's metrics (DefineCounterMetric & co.) and the
//   filter's own stats (<stat_prefix>golang.panic_error).
// - RoutePluginConfig: one per plugin in a ConfigsPerRoute (typed_per_filter_config on a virtual
//   host or route). Parsed at start-up with is_route_config = 1; merged with its parent's id at
//   request time (the plugin's Merge), the result cached per parent as Envoy does.
//
// Thread-safety: created on the main thread; ids and metrics are used from workers and from Go
// goroutines (locks below). The httpConfig struct given to Go stays at a fixed address until Go's
// finalizer calls envoyGoConfigHttpFinalize.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api.h"
#include "source/common/stats.h"
#include "source/golang/go_library.h"

namespace corral::golang {

// A plugin's metric (DefineCounterMetric / DefineGaugeMetric / DefineHistogramMetric).
// Ids are (index << 2 | type); Go treats them as opaque.
class PluginMetrics {
public:
  explicit PluginMetrics(stats::Store& store) : store_(store) {}
  CAPIStatus define(uint32_t type, std::string_view name, uint32_t* id);
  CAPIStatus increment(uint32_t id, int64_t offset);
  CAPIStatus get(uint32_t id, uint64_t* value);
  CAPIStatus record(uint32_t id, uint64_t value);

private:
  struct Metric {
    uint32_t type;  // 0 counter, 1 gauge, 2 histogram (the SDK's api.MetricType)
    stats::Counter* counter = nullptr;
    stats::Gauge* gauge = nullptr;
    stats::Histogram* histogram = nullptr;
  };
  const Metric* find(uint32_t id);

  stats::Store& store_;
  std::mutex mu_;
  std::vector<Metric> metrics_;
};

// The config struct Go holds on to (metrics are defined through it). Standard layout with
// httpConfig first, so the pointer Go has is ours.
struct HttpConfigInternal : httpConfig {
  std::shared_ptr<PluginMetrics> metrics;
};

class FilterConfig {
public:
  // Parses the plugin config in Go; a Parse error is a config error naming `yaml_path`.
  static absl::StatusOr<std::shared_ptr<FilterConfig>> create(
      GoLibrarySharedPtr library, std::string plugin_name, const std::string& any_bytes,
      uint32_t concurrency, stats::Store& store, const std::string& stat_prefix,
      const std::string& yaml_path);
  ~FilterConfig();

  const std::string& pluginName() const { return plugin_name_; }
  const GoLibrary& library() const { return *library_; }
  uint64_t configId() const { return config_id_; }
  uint32_t concurrency() const { return concurrency_; }
  stats::Counter& panicError() { return panic_error_; }
  stats::Counter& invalidStatus() { return invalid_status_; }
  // Requests Go knows about and has not finalized yet.
  stats::Gauge& liveRequests() { return live_requests_; }

private:
  FilterConfig(GoLibrarySharedPtr library, std::string plugin_name, uint32_t concurrency,
               stats::Counter& panic_error, stats::Counter& invalid_status,
               stats::Gauge& live_requests)
      : library_(std::move(library)),
        plugin_name_(std::move(plugin_name)),
        concurrency_(concurrency),
        panic_error_(panic_error),
        invalid_status_(invalid_status),
        live_requests_(live_requests) {}

  GoLibrarySharedPtr library_;
  const std::string plugin_name_;
  const uint32_t concurrency_;
  stats::Counter& panic_error_;
  stats::Counter& invalid_status_;
  stats::Gauge& live_requests_;
  uint64_t config_id_ = 0;
};
using FilterConfigSharedPtr = std::shared_ptr<FilterConfig>;

class RoutePluginConfig {
public:
  static absl::StatusOr<std::unique_ptr<RoutePluginConfig>> create(GoLibrarySharedPtr library,
                                                                   std::string plugin_name,
                                                                   const std::string& any_bytes,
                                                                   uint32_t concurrency,
                                                                   const std::string& yaml_path);
  ~RoutePluginConfig();
  // This level's config merged onto `parent_id` (the filter's, or the virtual host's merged id).
  uint64_t mergedConfigId(uint64_t parent_id);

private:
  RoutePluginConfig(GoLibrarySharedPtr library, std::string plugin_name)
      : library_(std::move(library)), plugin_name_(std::move(plugin_name)) {}
  GoLibrarySharedPtr library_;
  const std::string plugin_name_;
  uint64_t config_id_ = 0;
  std::mutex mu_;
  uint64_t cached_parent_ = 0;
  uint64_t merged_id_ = 0;
};

// ConfigsPerRoute: plugin name -> its route-level config.
using RouteConfigs = std::map<std::string, std::unique_ptr<RoutePluginConfig>>;

}  // namespace corral::golang
