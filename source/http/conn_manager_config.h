#pragma once
// Everything a listener's HTTP connection manager needs, built once from config on the main
// thread and shared read-only by all workers: routes, filter factories, access logs, stats.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/stats.h"
#include "source/config/bootstrap.h"
#include "source/http/access_log.h"
#include "source/http/filter.h"
#include "source/http/filter_registry.h"
#include "source/http/route_table.h"

namespace corral::http {

struct ConnectionManagerStats {
  explicit ConnectionManagerStats(stats::Store& store, const std::string& prefix);
  stats::Counter& downstream_cx_total;
  stats::Gauge& downstream_cx_active;
  stats::Counter& downstream_cx_destroy;
  stats::Counter& downstream_cx_protocol_error;
  stats::Counter& downstream_cx_idle_timeout;
  stats::Counter& downstream_rq_total;
  stats::Gauge& downstream_rq_active;
  stats::Counter& downstream_rq_timeout;
  stats::Counter& downstream_rq_idle_timeout;
  stats::Counter& downstream_rq_rx_reset;
  stats::Counter& downstream_rq_too_large;
  stats::Counter* downstream_rq_xx[6];  // [1]..[5]
  stats::Counter& no_route;
};

class ConnectionManagerConfig {
public:
  // yaml_path: path of the connection manager's typed_config, for error messages.
  static absl::StatusOr<std::shared_ptr<const ConnectionManagerConfig>> create(
      const config::HttpConnectionManager& hcm, const std::string& yaml_path,
      const config::Bootstrap& bootstrap, const FilterRegistry& registry, stats::Store& store,
      uint32_t concurrency);
  // A chain the caller built (the sandbox process: one Golang filter and its sink), with this
  // connection manager's routes and no access logs. `hcm` must outlive the config.
  static std::shared_ptr<const ConnectionManagerConfig> createWithFilters(
      const config::HttpConnectionManager& hcm, stats::Store& store,
      std::vector<FilterFactoryPtr> filters);

  const config::HttpConnectionManager& hcm() const { return hcm_; }
  const RouteTable& routes() const { return routes_; }
  const std::vector<FilterFactoryPtr>& filters() const { return filters_; }
  const std::vector<AccessLoggerPtr>& accessLogs() const { return access_logs_; }
  ConnectionManagerStats& stats() const { return stats_; }
  // Per-stream body buffer limit (Envoy's per_connection_buffer_limit_bytes default).
  size_t bufferLimit() const { return 1024 * 1024; }

private:
  ConnectionManagerConfig(const config::HttpConnectionManager& hcm, stats::Store& store)
      : hcm_(hcm), routes_(hcm.route_config), stats_(store, "http." + hcm.stat_prefix + ".") {}

  const config::HttpConnectionManager& hcm_;
  RouteTable routes_;
  std::vector<FilterFactoryPtr> filters_;
  std::vector<AccessLoggerPtr> access_logs_;
  mutable ConnectionManagerStats stats_;
};
using ConnectionManagerConfigSharedPtr = std::shared_ptr<const ConnectionManagerConfig>;

}  // namespace corral::http
