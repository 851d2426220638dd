#include "source/golang/plugin_config.h"

#include <fmt/format.h>

#include "source/common/logger.h"

namespace corral::golang {
namespace {
constexpr uint32_t kCounter = 0;
constexpr uint32_t kGauge = 1;
constexpr uint32_t kHistogram = 2;

uint64_t toPtr(const void* p) {
  return reinterpret_cast<uint64_t>(p);
}

// Calls the SDK's config constructor (the plugin's Parse) and returns the config id; a Parse
// failure is an error naming `yaml_path` with what the plugin logged about it.
absl::StatusOr<uint64_t> newPluginConfig(const GoLibrary& library, httpConfig* config,
                                         const std::string& name, const std::string& any_bytes,
                                         bool is_route, uint32_t concurrency,
                                         const std::string& yaml_path) {
  std::string errors;
  ScopedGoCall call(name, &errors);
  config->plugin_name_ptr = toPtr(name.data());
  config->plugin_name_len = name.size();
  config->config_ptr = toPtr(any_bytes.data());
  config->config_len = any_bytes.size();
  config->is_route_config = is_route ? 1 : 0;
  config->concurrency = concurrency;
  const uint64_t id = library.exports().new_http_plugin_config(config);
  if (id == 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: plugin {} rejected its {}: {}", yaml_path, name,
                    is_route ? "per-route config" : "plugin_config", errors));
  }
  return id;
}
}  // namespace

// ---- PluginMetrics ----

CAPIStatus PluginMetrics::define(uint32_t type, std::string_view name, uint32_t* id) {
  if (type > kHistogram) {
    return CAPIValueNotFound;
  }
  std::lock_guard<std::mutex> lock(mu_);
  Metric m{type};
  const std::string n(name);
  switch (type) {
  case kCounter:
    m.counter = &store_.counter(n);
    break;
  case kGauge:
    m.gauge = &store_.gauge(n);
    break;
  default:
    m.histogram = &store_.histogram(n);
    break;
  }
  metrics_.push_back(m);
  *id = static_cast<uint32_t>(((metrics_.size() - 1) << 2) | type);
  return CAPIOK;
}

const PluginMetrics::Metric* PluginMetrics::find(uint32_t id) {
  const size_t index = id >> 2;
  if (index >= metrics_.size() || metrics_[index].type != (id & 3)) {
    return nullptr;  // an id we never gave out
  }
  return &metrics_[index];
}

CAPIStatus PluginMetrics::increment(uint32_t id, int64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  const Metric* m = find(id);
  if (m == nullptr) {
    return CAPIOK;  // Envoy ignores unknown ids
  }
  if (m->counter != nullptr && offset > 0) {
    m->counter->inc(static_cast<uint64_t>(offset));
  } else if (m->gauge != nullptr) {
    m->gauge->inc(offset);
  }
  return CAPIOK;
}

CAPIStatus PluginMetrics::get(uint32_t id, uint64_t* value) {
  std::lock_guard<std::mutex> lock(mu_);
  const Metric* m = find(id);
  if (m == nullptr) {
    return CAPIOK;
  }
  if (m->counter != nullptr) {
    *value = m->counter->value();
  } else if (m->gauge != nullptr) {
    *value = static_cast<uint64_t>(m->gauge->value());
  }
  return CAPIOK;
}

CAPIStatus PluginMetrics::record(uint32_t id, uint64_t value) {
  std::lock_guard<std::mutex> lock(mu_);
  const Metric* m = find(id);
  if (m == nullptr) {
    return CAPIOK;
  }
  if (m->counter != nullptr) {
    m->counter->inc(value);
  } else if (m->gauge != nullptr) {
    m->gauge->inc(static_cast<int64_t>(value) - m->gauge->value());  // set
  } else {
    m->histogram->record(value);
  }
  return CAPIOK;
}

// ---- FilterConfig ----

absl::StatusOr<std::shared_ptr<FilterConfig>> FilterConfig::create(
    GoLibrarySharedPtr library, std::string plugin_name, const std::string& any_bytes,
    uint32_t concurrency, stats::Store& store, const std::string& stat_prefix,
    const std::string& yaml_path) {
  std::shared_ptr<FilterConfig> config(
      new FilterConfig(std::move(library), std::move(plugin_name), concurrency,
                       store.counter(stat_prefix + "golang.panic_error"),
                       store.counter(stat_prefix + "golang.invalid_status"),
                       store.gauge(stat_prefix + "golang.live_requests")));
  // Go keeps this struct (its config finalizer hands it back through envoyGoConfigHttpFinalize,
  // which frees it); the plugin defines its metrics through it.
  auto* c = new HttpConfigInternal();
  c->metrics = std::make_shared<PluginMetrics>(store);
  auto id = newPluginConfig(*config->library_, c, config->plugin_name_, any_bytes, false,
                            concurrency, yaml_path);
  if (!id.ok()) {
    return id.status();
  }
  config->config_id_ = *id;
  return config;
}

FilterConfig::~FilterConfig() {
  if (config_id_ != 0) {
    library_->exports().destroy_http_plugin_config(config_id_, 0);
  }
}

// ---- RoutePluginConfig ----

absl::StatusOr<std::unique_ptr<RoutePluginConfig>> RoutePluginConfig::create(
    GoLibrarySharedPtr library, std::string plugin_name, const std::string& any_bytes,
    uint32_t concurrency, const std::string& yaml_path) {
  std::unique_ptr<RoutePluginConfig> config(
      new RoutePluginConfig(std::move(library), std::move(plugin_name)));
  // Go does not keep a route config's struct: it may live on the stack.
  httpConfig c{};
  auto id = newPluginConfig(*config->library_, &c, config->plugin_name_, any_bytes, true,
                            concurrency, yaml_path);
  if (!id.ok()) {
    return id.status();
  }
  config->config_id_ = *id;
  return config;
}

RoutePluginConfig::~RoutePluginConfig() {
  const auto& go = library_->exports();
  if (config_id_ != 0) {
    go.destroy_http_plugin_config(config_id_, 0);
  }
  if (merged_id_ != 0) {
    go.destroy_http_plugin_config(merged_id_, 0);
  }
}

uint64_t RoutePluginConfig::mergedConfigId(uint64_t parent_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (merged_id_ != 0 && cached_parent_ == parent_id) {
    return merged_id_;
  }
  const auto& go = library_->exports();
  if (merged_id_ != 0) {
    go.destroy_http_plugin_config(merged_id_, 1);  // requests may still use it: Go delays
  }
  ScopedGoCall call(plugin_name_);
  merged_id_ = go.merge_http_plugin_config(toPtr(plugin_name_.data()), plugin_name_.size(),
                                           parent_id, config_id_);
  cached_parent_ = parent_id;
  return merged_id_;
}

}  // namespace corral::golang
