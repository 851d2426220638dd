#pragma once
// Maps an http_filters[] entry (by its typed_config "@type", else by name) to the code that
// builds its FilterFactory. Filled on the main thread at start-up; read-only afterwards.

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "source/common/stats.h"
#include "source/config/bootstrap.h"
#include "source/http/filter.h"

namespace corral::http {

struct FilterFactoryContext {
  const config::Bootstrap& bootstrap;
  const config::HttpConnectionManager& hcm;  // the filter's connection manager (routes)
  std::string hcm_path;                      // its YAML path
  std::string stat_prefix;                   // the connection manager's, e.g. "http.ingress."
  uint32_t concurrency;                      // number of worker threads
  stats::Store& stats;
};

using FilterFactoryCreator = std::function<absl::StatusOr<FilterFactoryPtr>(
    const config::HttpFilter& filter, FilterFactoryContext& context)>;

class FilterRegistry {
public:
  // `name` is the well-known name (envoy.filters.http.router); `type_url` its config type.
  void add(const std::string& name, const std::string& type_url, FilterFactoryCreator creator);
  // Errors name the filter's YAML path.
  absl::StatusOr<FilterFactoryPtr> create(const config::HttpFilter& filter,
                                          FilterFactoryContext& context) const;

private:
  std::map<std::string, FilterFactoryCreator> by_name_;
  std::map<std::string, FilterFactoryCreator> by_type_;
};

}  // namespace corral::http
