#include "source/http/conn_manager_config.h"

#include <fmt/format.h>

namespace corral::http {

ConnectionManagerStats::ConnectionManagerStats(stats::Store& s, const std::string& p)
    : downstream_cx_total(s.counter(p + "downstream_cx_total")),
      downstream_cx_active(s.gauge(p + "downstream_cx_active")),
      downstream_cx_destroy(s.counter(p + "downstream_cx_destroy")),
      downstream_cx_protocol_error(s.counter(p + "downstream_cx_protocol_error")),
      downstream_cx_idle_timeout(s.counter(p + "downstream_cx_idle_timeout")),
      downstream_rq_total(s.counter(p + "downstream_rq_total")),
      downstream_rq_active(s.gauge(p + "downstream_rq_active")),
      downstream_rq_timeout(s.counter(p + "downstream_rq_timeout")),
      downstream_rq_idle_timeout(s.counter(p + "downstream_rq_idle_timeout")),
      downstream_rq_rx_reset(s.counter(p + "downstream_rq_rx_reset")),
      downstream_rq_too_large(s.counter(p + "downstream_rq_too_large")),
      downstream_rq_xx{nullptr,
                       &s.counter(p + "downstream_rq_1xx"),
                       &s.counter(p + "downstream_rq_2xx"),
                       &s.counter(p + "downstream_rq_3xx"),
                       &s.counter(p + "downstream_rq_4xx"),
                       &s.counter(p + "downstream_rq_5xx")},
      no_route(s.counter(p + "no_route")) {}

absl::StatusOr<std::shared_ptr<const ConnectionManagerConfig>> ConnectionManagerConfig::create(
    const config::HttpConnectionManager& hcm, const std::string& yaml_path,
    const config::Bootstrap& bootstrap, const FilterRegistry& registry, stats::Store& store,
    uint32_t concurrency) {
  std::shared_ptr<ConnectionManagerConfig> cfg(new ConnectionManagerConfig(hcm, store));
  FilterFactoryContext context{bootstrap,   hcm,  yaml_path, "http." + hcm.stat_prefix + ".",
                               concurrency, store};
  for (size_t i = 0; i < hcm.http_filters.size(); ++i) {
    auto factory = registry.create(hcm.http_filters[i], context);
    if (!factory.ok()) {
      return factory.status();
    }
    const bool last = i + 1 == hcm.http_filters.size();
    if ((*factory)->terminal() != last) {
      return absl::InvalidArgumentError(fmt::format(
          "{}.http_filters[{}]: {}", yaml_path, i,
          last ? "the last HTTP filter must be a terminal filter (envoy.filters.http.router)"
               : "a terminal filter (envoy.filters.http.router) must be the last filter"));
    }
    cfg->filters_.push_back(std::move(*factory));
  }
  if (cfg->filters_.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.http_filters: at least envoy.filters.http.router is required", yaml_path));
  }
  for (size_t i = 0; i < hcm.access_logs.size(); ++i) {
    auto logger = AccessLogger::create(hcm.access_logs[i],
                                       fmt::format("{}.access_log[{}].typed_config", yaml_path, i));
    if (!logger.ok()) {
      return logger.status();
    }
    cfg->access_logs_.push_back(std::move(*logger));
  }
  return cfg;
}

std::shared_ptr<const ConnectionManagerConfig> ConnectionManagerConfig::createWithFilters(
    const config::HttpConnectionManager& hcm, stats::Store& store,
    std::vector<FilterFactoryPtr> filters) {
  std::shared_ptr<ConnectionManagerConfig> cfg(new ConnectionManagerConfig(hcm, store));
  cfg->filters_ = std::move(filters);
  return cfg;
}

}  // namespace corral::http
