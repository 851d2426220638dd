#include "source/http/route_table.h"

#include <algorithm>

namespace corral::http {

RouteTable::RouteTable(const config::RouteConfiguration& config) : config_(config) {
  for (const auto& vh : config_.virtual_hosts) {
    for (const auto& d : vh.domains) {
      if (d == "*") {
        default_ = &vh;
      } else if (d.front() == '*') {
        suffixes_.emplace_back(d.substr(1), &vh);
      } else if (d.back() == '*') {
        prefixes_.emplace_back(d.substr(0, d.size() - 1), &vh);
      } else {
        exact_.emplace(d, &vh);
      }
    }
  }
  auto longer = [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); };
  std::stable_sort(suffixes_.begin(), suffixes_.end(), longer);
  std::stable_sort(prefixes_.begin(), prefixes_.end(), longer);
}

const config::VirtualHost* RouteTable::findVirtualHost(std::string_view authority) const {
  const std::string host = toLower(authority);
  if (auto it = exact_.find(host); it != exact_.end()) {
    return it->second;
  }
  for (const auto& [suffix, vh] : suffixes_) {
    // "*.example.com" needs at least one character before the suffix.
    if (host.size() > suffix.size() &&
        host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return vh;
    }
  }
  for (const auto& [prefix, vh] : prefixes_) {
    if (host.size() > prefix.size() && host.compare(0, prefix.size(), prefix) == 0) {
      return vh;
    }
  }
  return default_;
}

namespace {
bool headerMatches(const config::HeaderMatcher& m, const HeaderMap& headers) {
  auto values = headers.getAll(m.name);
  bool result;
  if (m.kind == config::HeaderMatcher::Kind::Present) {
    result = values.empty() != m.present;
  } else if (values.empty()) {
    return false;  // Envoy: a missing header never matches a value matcher, even inverted
  } else {
    // Multiple values are matched as one comma-joined value, as Envoy does.
    std::string joined;
    for (auto v : values) {
      if (!joined.empty()) {
        joined += ',';
      }
      joined += v;
    }
    const std::string_view v = joined;
    switch (m.kind) {
    case config::HeaderMatcher::Kind::Exact:
      result = v == m.value;
      break;
    case config::HeaderMatcher::Kind::Prefix:
      result = v.substr(0, m.value.size()) == m.value;
      break;
    case config::HeaderMatcher::Kind::Suffix:
      result = v.size() >= m.value.size() && v.substr(v.size() - m.value.size()) == m.value;
      break;
    case config::HeaderMatcher::Kind::Contains:
      result = v.find(m.value) != std::string_view::npos;
      break;
    case config::HeaderMatcher::Kind::Regex:
      result = m.regex != nullptr && re2::RE2::FullMatch(v, *m.regex);
      break;
    default:
      result = false;
    }
  }
  return result != m.invert;
}
}  // namespace

bool RouteTable::routeMatches(const config::Route& route, const HeaderMap& headers) {
  const std::string_view full_path = headers.getView(":path");
  const auto& m = route.match;
  switch (m.kind) {
  case config::RouteMatch::Kind::Prefix:
    if (m.case_sensitive ? full_path.substr(0, m.value.size()) != m.value
                         : !equalsIgnoreCase(full_path.substr(0, m.value.size()), m.value)) {
      return false;
    }
    break;
  case config::RouteMatch::Kind::Path: {
    const std::string_view path = full_path.substr(0, full_path.find('?'));
    if (m.case_sensitive ? path != m.value : !equalsIgnoreCase(path, m.value)) {
      return false;
    }
    break;
  }
  case config::RouteMatch::Kind::Regex: {
    const std::string_view path = full_path.substr(0, full_path.find('?'));
    if (m.regex == nullptr || !re2::RE2::FullMatch(path, *m.regex)) {
      return false;
    }
    break;
  }
  }
  return std::all_of(m.headers.begin(), m.headers.end(),
                     [&](const config::HeaderMatcher& h) { return headerMatches(h, headers); });
}

std::optional<Route> RouteTable::route(const HeaderMap& headers) const {
  const config::VirtualHost* vh = findVirtualHost(headers.getView(":authority"));
  if (vh == nullptr) {
    return std::nullopt;
  }
  for (const auto& r : vh->routes) {
    if (routeMatches(r, headers)) {
      return Route{vh, &r};
    }
  }
  return std::nullopt;
}

void applyRouteRewrites(const config::Route& route, HeaderMap& headers) {
  if (!route.route) {
    return;
  }
  const auto& action = *route.route;
  if (action.prefix_rewrite && route.match.kind == config::RouteMatch::Kind::Prefix) {
    const std::string path(headers.getView(":path"));
    if (path.size() >= route.match.value.size()) {
      headers.set("x-envoy-original-path", path);
      headers.set(":path", *action.prefix_rewrite + path.substr(route.match.value.size()));
    }
  }
  if (action.host_rewrite_literal) {
    headers.set(":authority", *action.host_rewrite_literal);
  }
}

}  // namespace corral::http
