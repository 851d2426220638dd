// envoy.filters.http.golang: its config (envoy.extensions.filters.http.golang.v3alpha.Config and,
// per route, ConfigsPerRoute) read from the YAML, the plugin library loaded, the plugin configs
// parsed in Go at start-up, and the per-stream filter factory.

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/golang/golang_filter.h"
#include "source/golang/plugin_config_any.h"
#include "source/golang/sandboxed_filter.h"
#include "source/sandbox/sandbox_manager.h"

namespace corral::golang {

// Every Go library is process-wide: a Go runtime can be loaded once and never unloaded.
GoLibraryRegistry& libraries() {
  static GoLibraryRegistry registry;
  return registry;
}

namespace {

constexpr char kName[] = "envoy.filters.http.golang";
constexpr char kType[] = "type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.Config";
constexpr char kPerRouteType[] =
    "type.googleapis.com/envoy.extensions.filters.http.golang.v3alpha.ConfigsPerRoute";

absl::Status fieldError(const std::string& path, std::string_view what) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", path, what));
}

absl::StatusOr<std::string> requiredString(const YAML::Node& node, const std::string& path,
                                           const char* key) {
  const YAML::Node v = node[key];
  if (!v || !v.IsScalar() || v.Scalar().empty()) {
    return fieldError(fmt::format("{}.{}", path, key), "required, a non-empty string");
  }
  return v.Scalar();
}

class GolangFilterFactory : public http::FilterFactory {
public:
  GolangFilterFactory(FilterConfigSharedPtr config, std::shared_ptr<PerRouteConfigs> routes,
                      std::string name)
      : config_(std::move(config)), routes_(std::move(routes)), name_(std::move(name)) {}
  void createFilters(http::FilterChainBuilder& builder) const override {
    builder.addFilter(std::make_shared<GolangFilter>(config_, routes_, name_));
  }

private:
  FilterConfigSharedPtr config_;
  std::shared_ptr<const PerRouteConfigs> routes_;
  std::string name_;
};

// Parses the ConfigsPerRoute entries for this filter (by filter name) and plugin.
absl::Status loadPerRoute(const config::PerFilterConfigs& configs, const std::string& filter_name,
                          const GoLibrarySharedPtr& library, const std::string& plugin_name,
                          uint32_t concurrency, PerRouteConfigs& out) {
  auto it = configs.find(filter_name);
  if (it == configs.end()) {
    return absl::OkStatus();
  }
  const config::TypedConfig& tc = it->second;
  if (tc.type_url != kPerRouteType) {
    return fieldError(tc.path + ".@type",
                      fmt::format("must be {} for the Golang filter", kPerRouteType));
  }
  for (const auto& kv : tc.node) {
    const std::string key = kv.first.Scalar();
    if (key != "@type" && key != "plugins_config") {
      return fieldError(fmt::format("{}.{}", tc.path, key), "unknown field");
    }
  }
  const YAML::Node plugins = tc.node["plugins_config"];
  if (!plugins) {
    return absl::OkStatus();
  }
  if (!plugins.IsMap()) {
    return fieldError(tc.path + ".plugins_config", "must be a mapping of plugin name to config");
  }
  for (const auto& kv : plugins) {
    const std::string name = kv.first.Scalar();
    const std::string path = fmt::format("{}.plugins_config.{}", tc.path, name);
    if (name != plugin_name) {
      continue;  // another Golang filter's plugin
    }
    const YAML::Node plugin = kv.second;
    if (!plugin.IsMap()) {
      return fieldError(path, "must be a mapping with `config` or `disabled`");
    }
    for (const auto& f : plugin) {
      const std::string key = f.first.Scalar();
      if (key != "config" && key != "disabled") {
        return fieldError(fmt::format("{}.{}", path, key), "unknown field");
      }
    }
    if (plugin["disabled"]) {
      // RouterPlugin.disabled is marked not-implemented in Envoy too: refuse it, never ignore it.
      return fieldError(path + ".disabled", "not implemented (in Envoy either); remove it");
    }
    if (!plugin["config"]) {
      return fieldError(path + ".config", "required (RouterPlugin needs `config`)");
    }
    auto bytes = serializeAnyFromYaml(plugin["config"], path + ".config");
    if (!bytes.ok()) {
      return bytes.status();
    }
    auto route_config =
        RoutePluginConfig::create(library, plugin_name, *bytes, concurrency, path + ".config");
    if (!route_config.ok()) {
      return route_config.status();
    }
    out.by_owner[&tc][plugin_name] = std::move(*route_config);
  }
  return absl::OkStatus();
}

absl::StatusOr<http::FilterFactoryPtr> createFactory(const config::HttpFilter& filter,
                                                     http::FilterFactoryContext& context) {
  const YAML::Node& node = filter.typed_config.node;
  const std::string& path = filter.typed_config.path;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    if (key == "merge_policy") {
      const std::string v = kv.second.Scalar();
      if (v != "MERGE_VIRTUALHOST_ROUTER_FILTER") {
        return fieldError(path + ".merge_policy",
                          "only MERGE_VIRTUALHOST_ROUTER_FILTER (the default) is supported");
      }
    } else if (key == "generic_secrets") {
      return fieldError(path + ".generic_secrets", "not supported by corral yet");
    } else if (key != "@type" && key != "library_id" && key != "library_path" &&
               key != "plugin_name" && key != "plugin_config") {
      return fieldError(fmt::format("{}.{}", path, key), "unknown field");
    }
  }
  auto library_id = requiredString(node, path, "library_id");
  auto library_path = requiredString(node, path, "library_path");
  auto plugin_name = requiredString(node, path, "plugin_name");
  for (const auto* s : {&library_id, &library_path, &plugin_name}) {
    if (!s->ok()) {
      return s->status();
    }
  }
  auto any_bytes = serializeAnyFromYaml(node["plugin_config"], path + ".plugin_config");
  if (!any_bytes.ok()) {
    return any_bytes.status();
  }
  config::Bootstrap::GolangLibrary isolation;
  if (auto it = context.bootstrap.golang_libraries.find(*library_id);
      it != context.bootstrap.golang_libraries.end()) {
    isolation = it->second;
  }
  if (isolation.isolation == config::Bootstrap::GolangLibrary::Isolation::Sandbox) {
    // The library is never loaded here: its processes load it and parse the plugin configs
    // (per-route ones too); their config errors come back when the server starts them.
    auto* manager = sandbox::SandboxManager::current();
    if (manager == nullptr) {
      return fieldError(path + ".library_id",
                        "sandbox isolation needs the server's sandbox manager");
    }
    auto sandboxed = manager->library(*library_id, *library_path, isolation, *plugin_name, path);
    if (!sandboxed.ok()) {
      return sandboxed.status();
    }
    return makeSandboxedFilterFactory(*sandboxed, path, *plugin_name);
  }
  auto library = libraries().get(*library_id, *library_path, path + ".library_path");
  if (!library.ok()) {
    return library.status();
  }
  // Go sizes its per-worker request tables by this; worker ids are 0..concurrency-1.
  const uint32_t concurrency = std::max<uint32_t>(context.concurrency, 1);
  auto config = FilterConfig::create(*library, *plugin_name, *any_bytes, concurrency, context.stats,
                                     context.stat_prefix, path + ".plugin_config");
  if (!config.ok()) {
    return config.status();
  }
  auto routes = std::make_shared<PerRouteConfigs>();
  for (const auto& vh : context.hcm.route_config.virtual_hosts) {
    auto status = loadPerRoute(vh.typed_per_filter_config, filter.name, *library, *plugin_name,
                               concurrency, *routes);
    for (size_t i = 0; status.ok() && i < vh.routes.size(); ++i) {
      status = loadPerRoute(vh.routes[i].typed_per_filter_config, filter.name, *library,
                            *plugin_name, concurrency, *routes);
    }
    if (!status.ok()) {
      return status;
    }
  }
  return std::make_unique<GolangFilterFactory>(*config, std::move(routes), filter.name);
}

}  // namespace

void registerGolangFilter(http::FilterRegistry& registry) {
  registry.add(kName, kType, createFactory);
}

void collectGoGarbage() {
  libraries().forEach([](const GoLibrary& library) {
    // Twice: a finalizer that runs in the first cycle may release what the second collects.
    library.exports().clean_up();
    library.exports().clean_up();
  });
}

}  // namespace corral::golang
