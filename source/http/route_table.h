#pragma once
// Virtual-host and route selection from a RouteConfiguration, as Envoy does it: domains are
// tried exact first, then the longest "*.suffix", then the longest "prefix*", then "*"; routes are
// tried in order and the first match wins. Immutable after construction; shared by workers.

#include <string_view>
#include <unordered_map>
#include <vector>

#include "source/config/bootstrap.h"
#include "source/http/filter.h"
#include "source/http/header_map.h"

namespace corral::http {

class RouteTable {
public:
  explicit RouteTable(const config::RouteConfiguration& config);

  // `headers` are request headers with pseudo-headers. nullopt: no route.
  std::optional<Route> route(const HeaderMap& headers) const;
  const config::VirtualHost* findVirtualHost(std::string_view authority) const;

private:
  static bool routeMatches(const config::Route& route, const HeaderMap& headers);

  const config::RouteConfiguration& config_;
  std::unordered_map<std::string, const config::VirtualHost*> exact_;
  // (suffix or prefix without the '*', vhost), longest first.
  std::vector<std::pair<std::string, const config::VirtualHost*>> suffixes_;
  std::vector<std::pair<std::string, const config::VirtualHost*>> prefixes_;
  const config::VirtualHost* default_ = nullptr;
};

// Applies the route's prefix_rewrite and host_rewrite_literal to request headers, keeping the
// original path in x-envoy-original-path as Envoy does.
void applyRouteRewrites(const config::Route& route, HeaderMap& headers);

}  // namespace corral::http
