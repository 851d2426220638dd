#include "source/config/bootstrap_loader.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "source/config/yaml_reader.h"

namespace corral::config {
namespace {

constexpr std::string_view kHcmType =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager";
constexpr std::string_view kStdoutLogType =
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
constexpr std::string_view kStderrLogType =
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog";
constexpr std::string_view kFileLogType =
    "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

class Loader {
public:
  explicit Loader(Errors& errors) : r_(errors) {}

  Bootstrap load(const YAML::Node& root) {
    Bootstrap b;
    warnings_ = &b.warnings;
    b.raw = root;
    At top{root, "", root.Mark()};
    if (!r_.mapping(top, {"admin", "static_resources", "node", "corral"})) {
      return b;
    }
    loadAdmin(top.field("admin"), b);
    loadNode(top.field("node"), b);
    At corral = top.field("corral");
    if (corral.present()) {
      r_.mapping(corral, {"golang_libraries"});
      b.corral = corral.node;
      loadGolangLibraries(corral.field("golang_libraries"), b);
    }
    At sr = top.field("static_resources");
    if (!sr.present()) {
      r_.error(sr, "required field is missing");
      return b;
    }
    if (!r_.mapping(sr, {"listeners", "clusters"})) {
      return b;
    }
    loadClusters(sr.field("clusters"), b);
    loadListeners(sr.field("listeners"), b);
    checkReferences(sr, b);
    return b;
  }

private:
  // corral.golang_libraries.<library_id>: how a Go plugin library runs.
  void loadGolangLibraries(const At& at, Bootstrap& b) {
    if (!at.present()) {
      return;
    }
    if (!at.node.IsMap()) {
      r_.error(at, "must be a mapping of library_id to options");
      return;
    }
    for (const auto& kv : at.node) {
      const std::string id = kv.first.Scalar();
      At lib = at.field(id);
      Bootstrap::GolangLibrary o;
      if (lib.present() &&
          !r_.mapping(lib, {"isolation", "processes", "warm_spares", "memory_limit_bytes",
                            "callback_timeout", "heartbeat_interval", "on_failure",
                            "restart_backoff", "seccomp", "env"})) {
        continue;
      }
      if (auto v = r_.oneOf(lib.field("isolation"), {"sandbox", "in_process"}, false)) {
        o.isolation = *v == 0 ? Bootstrap::GolangLibrary::Isolation::Sandbox
                              : Bootstrap::GolangLibrary::Isolation::InProcess;
      }
      if (lib.field("processes").present()) {
        o.processes = static_cast<uint32_t>(r_.uint(lib.field("processes"), false, 64).value_or(1));
        if (o.processes == 0) {
          r_.error(lib.field("processes"), "must be at least 1");
        }
      }
      if (lib.field("warm_spares").present()) {
        o.warm_spares =
            static_cast<uint32_t>(r_.uint(lib.field("warm_spares"), false, 16).value_or(1));
      }
      if (At m = lib.field("memory_limit_bytes"); m.present()) {
        o.memory_limit_bytes = r_.uint(m, false, 1ull << 50).value_or(o.memory_limit_bytes);
        if (o.memory_limit_bytes < (64ull << 20)) {
          r_.error(m, "must be at least 67108864 (64 MiB): a Go runtime needs room to start");
        }
      }
      positiveDuration(lib.field("callback_timeout"), o.callback_timeout);
      positiveDuration(lib.field("heartbeat_interval"), o.heartbeat_interval);
      if (auto v = r_.oneOf(lib.field("on_failure"), {"fail_closed", "fail_open"}, false)) {
        o.on_failure = *v == 0 ? Bootstrap::GolangLibrary::OnFailure::FailClosed
                               : Bootstrap::GolangLibrary::OnFailure::FailOpen;
      }
      if (At b = lib.field("restart_backoff"); b.present() && r_.mapping(b, {"base", "max"})) {
        positiveDuration(b.field("base"), o.restart_backoff_base);
        positiveDuration(b.field("max"), o.restart_backoff_max);
        if (o.restart_backoff_max < o.restart_backoff_base) {
          r_.error(b.field("max"), "must not be below base");
        }
      }
      if (auto v = r_.oneOf(lib.field("seccomp"), {"default", "off"}, false)) {
        o.seccomp = *v == 0;
      }
      if (At env = lib.field("env"); env.present()) {
        if (!env.node.IsMap()) {
          r_.error(env, "must be a mapping of variable name to value");
        } else {
          for (const auto& e : env.node) {
            const std::string name = e.first.Scalar();
            At value = env.field(name);
            if (name.empty() || name.find('=') != std::string::npos) {
              r_.error(value, "a variable name must be non-empty and without '='");
            } else if (auto v = r_.string(value, true)) {
              o.env[name] = *v;
            }
          }
        }
      }
      b.golang_libraries[id] = o;
    }
  }

  void positiveDuration(const At& at, Millis& out) {
    if (!at.present()) {
      return;
    }
    if (auto d = r_.duration(at)) {
      if (d->count() <= 0) {
        r_.error(at, "must be positive (at least 0.001s)");
      } else {
        out = *d;
      }
    }
  }

  void loadAdmin(const At& at, Bootstrap& b) {
    if (!at.present() || !r_.mapping(at, {"address", "access_log", "access_log_path"})) {
      return;
    }
    for (const char* f : {"access_log", "access_log_path"}) {
      if (at.field(f).present()) {
        warn(at.field(f), "not implemented: the admin endpoint writes no access log");
      }
    }
    At addr = at.field("address");
    if (!addr.present()) {
      r_.error(addr, "required field is missing");
      return;
    }
    b.admin_address = socketAddress(addr);
  }

  void loadNode(const At& at, Bootstrap& b) {
    if (!at.present() || !r_.mapping(at, {"id", "cluster"})) {
      return;
    }
    b.node_id = r_.string(at.field("id"), false).value_or("");
    b.node_cluster = r_.string(at.field("cluster"), false).value_or("");
  }

  SocketAddress socketAddress(const At& address) {
    SocketAddress out;
    if (!r_.mapping(address, {"socket_address"})) {
      return out;
    }
    At sa = address.field("socket_address");
    if (!sa.present()) {
      r_.error(sa, "required field is missing");
      return out;
    }
    if (!r_.mapping(sa, {"address", "port_value", "protocol"})) {
      return out;
    }
    out.address = r_.string(sa.field("address"), true).value_or("");
    out.port = static_cast<uint32_t>(r_.uint(sa.field("port_value"), true, 65535).value_or(0));
    r_.oneOf(sa.field("protocol"), {"TCP"}, false);
    return out;
  }

  // typed_config with an optional "@type" that, when given, must be one of `types`.
  TypedConfig typedConfig(const At& at, std::initializer_list<std::string_view> types) {
    TypedConfig tc;
    tc.node = at.node;
    tc.path = at.path;
    if (!at.node.IsMap()) {
      r_.error(at, "expected a mapping");
      return tc;
    }
    tc.type_url = r_.string(at.field("@type"), false).value_or("");
    if (!tc.type_url.empty() && types.size() > 0 &&
        std::find(types.begin(), types.end(), tc.type_url) == types.end()) {
      std::string names;
      for (auto t : types) {
        names += names.empty() ? "" : ", ";
        names += t;
      }
      r_.error(at.field("@type"),
               fmt::format("unexpected type \"{}\"; expected {}", tc.type_url, names));
    }
    return tc;
  }

  void loadClusters(const At& at, Bootstrap& b) {
    if (!at.present() || !r_.sequence(at)) {
      return;
    }
    std::set<std::string> names;
    for (size_t i = 0; i < at.node.size(); ++i) {
      At c = at.index(i);
      if (!r_.mapping(c, {"name", "connect_timeout", "type", "lb_policy", "load_assignment",
                          "circuit_breakers", "dns_lookup_family", "dns_refresh_rate"})) {
        continue;
      }
      Cluster cl;
      cl.name = r_.string(c.field("name"), true).value_or("");
      if (!cl.name.empty() && !names.insert(cl.name).second) {
        r_.error(c.field("name"), fmt::format("duplicate cluster name \"{}\"", cl.name));
      }
      cl.connect_timeout = r_.duration(c.field("connect_timeout")).value_or(cl.connect_timeout);
      if (auto t = r_.oneOf(c.field("type"), {"STATIC", "STRICT_DNS"}, false)) {
        cl.type = *t == 0 ? Cluster::Type::Static : Cluster::Type::StrictDns;
      }
      if (auto p =
              r_.oneOf(c.field("lb_policy"), {"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"}, false)) {
        cl.lb_policy = static_cast<Cluster::LbPolicy>(*p);
      }
      if (auto f = r_.oneOf(c.field("dns_lookup_family"),
                            {"AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", "ALL"}, false)) {
        cl.dns_lookup_family = static_cast<Cluster::DnsLookupFamily>(*f);
      }
      if (r_.duration(c.field("dns_refresh_rate")) && c.field("dns_refresh_rate").present()) {
        warn(c.field("dns_refresh_rate"),
             "not implemented: STRICT_DNS clusters are resolved once, at start-up");
      }
      loadEndpoints(c.field("load_assignment"), cl);
      loadCircuitBreakers(c.field("circuit_breakers"), cl);
      b.clusters.push_back(std::move(cl));
    }
  }

  void loadEndpoints(const At& la, Cluster& cl) {
    if (!la.present()) {
      r_.error(la, "required field is missing");
      return;
    }
    if (!r_.mapping(la, {"cluster_name", "endpoints"})) {
      return;
    }
    r_.string(la.field("cluster_name"), false);
    At eps = la.field("endpoints");
    if (!eps.present() || !r_.sequence(eps)) {
      if (!eps.present()) {
        r_.error(eps, "required field is missing");
      }
      return;
    }
    for (size_t i = 0; i < eps.node.size(); ++i) {
      At locality = eps.index(i);
      if (!r_.mapping(locality, {"lb_endpoints", "locality"})) {
        continue;
      }
      At lbs = locality.field("lb_endpoints");
      if (!lbs.present() || !r_.sequence(lbs)) {
        if (!lbs.present()) {
          r_.error(lbs, "required field is missing");
        }
        continue;
      }
      for (size_t j = 0; j < lbs.node.size(); ++j) {
        At lb = lbs.index(j);
        if (!r_.mapping(lb, {"endpoint"})) {
          continue;
        }
        At ep = lb.field("endpoint");
        if (!ep.present()) {
          r_.error(ep, "required field is missing");
          continue;
        }
        if (!r_.mapping(ep, {"address"})) {
          continue;
        }
        At addr = ep.field("address");
        if (!addr.present()) {
          r_.error(addr, "required field is missing");
          continue;
        }
        SocketAddress sa = socketAddress(addr);
        if (cl.type == Cluster::Type::Static && !sa.address.empty()) {
          in6_addr_check(addr.field("socket_address").field("address"), sa.address);
        }
        cl.endpoints.push_back(std::move(sa));
      }
    }
  }

  // STATIC clusters need IP literals (Envoy rejects hostnames there).
  void in6_addr_check(const At& at, const std::string& ip) {
    const bool v4 = std::count(ip.begin(), ip.end(), '.') == 3 &&
                    ip.find_first_not_of("0123456789.") == std::string::npos;
    const bool v6 = ip.find(':') != std::string::npos &&
                    ip.find_first_not_of("0123456789abcdefABCDEF:.") == std::string::npos;
    if (!v4 && !v6) {
      r_.error(at, fmt::format("\"{}\" is not an IP address; a STATIC cluster needs IP addresses "
                               "(use type STRICT_DNS for host names)",
                               ip));
    }
  }

  void loadCircuitBreakers(const At& cb, Cluster& cl) {
    if (!cb.present() || !r_.mapping(cb, {"thresholds"})) {
      return;
    }
    At th = cb.field("thresholds");
    if (!th.present() || !r_.sequence(th)) {
      return;
    }
    for (size_t i = 0; i < th.node.size(); ++i) {
      At t = th.index(i);
      if (!r_.mapping(t, {"priority", "max_connections", "max_pending_requests", "max_requests",
                          "max_retries"})) {
        continue;
      }
      auto prio = r_.oneOf(t.field("priority"), {"DEFAULT", "HIGH"}, false);
      if (prio && *prio == 1) {
        continue;  // corral has no HIGH-priority routing; those thresholds never apply
      }
      constexpr uint64_t kMax = 0xffffffffULL;
      auto& c = cl.circuit_breakers;
      c.max_connections = static_cast<uint32_t>(
          r_.uint(t.field("max_connections"), false, kMax).value_or(c.max_connections));
      c.max_pending_requests = static_cast<uint32_t>(
          r_.uint(t.field("max_pending_requests"), false, kMax).value_or(c.max_pending_requests));
      c.max_requests = static_cast<uint32_t>(
          r_.uint(t.field("max_requests"), false, kMax).value_or(c.max_requests));
      r_.uint(t.field("max_retries"), false, kMax);
    }
  }

  void loadListeners(const At& at, Bootstrap& b) {
    if (!at.present()) {
      return;
    }
    if (!r_.sequence(at)) {
      return;
    }
    std::set<std::string> names;
    for (size_t i = 0; i < at.node.size(); ++i) {
      At l = at.index(i);
      if (!r_.mapping(l, {"name", "address", "filter_chains"})) {
        continue;
      }
      Listener listener;
      listener.name = r_.string(l.field("name"), false).value_or(fmt::format("listener_{}", i));
      if (!names.insert(listener.name).second) {
        r_.error(l.field("name"), fmt::format("duplicate listener name \"{}\"", listener.name));
      }
      At addr = l.field("address");
      if (!addr.present()) {
        r_.error(addr, "required field is missing");
      } else {
        listener.address = socketAddress(addr);
      }
      At chains = l.field("filter_chains");
      if (!chains.present()) {
        r_.error(chains, "required field is missing");
        continue;
      }
      if (!r_.sequence(chains)) {
        continue;
      }
      if (chains.node.size() != 1) {
        r_.error(chains, "exactly one filter chain is supported");
        continue;
      }
      At chain = chains.index(0);
      if (!r_.mapping(chain, {"filters", "name"})) {
        continue;
      }
      At filters = chain.field("filters");
      if (!filters.present() || !r_.sequence(filters) || filters.node.size() != 1) {
        r_.error(filters,
                 "exactly one network filter (envoy.filters.network.http_connection_"
                 "manager) is required");
        continue;
      }
      At f = filters.index(0);
      if (!r_.mapping(f, {"name", "typed_config"})) {
        continue;
      }
      r_.string(f.field("name"), false);
      At tc = f.field("typed_config");
      if (!tc.present()) {
        r_.error(tc, "required field is missing");
        continue;
      }
      typedConfig(tc, {kHcmType});
      loadHcm(tc, listener.hcm);
      b.listeners.push_back(std::move(listener));
    }
  }

  void loadHcm(const At& at, HttpConnectionManager& hcm) {
    if (!r_.mapping(
            at, {"@type", "stat_prefix", "codec_type", "route_config", "http_filters", "access_log",
                 "stream_idle_timeout", "request_timeout", "common_http_protocol_options",
                 "generate_request_id", "max_request_headers_kb", "use_remote_address"})) {
      return;
    }
    hcm.stat_prefix = r_.string(at.field("stat_prefix"), true).value_or("");
    if (auto codec = r_.oneOf(at.field("codec_type"), {"AUTO", "HTTP1", "HTTP2", "HTTP3"}, false);
        codec && *codec >= 2) {
      r_.error(at.field("codec_type"), "only HTTP/1.1 is supported (AUTO or HTTP1)");
    }
    if (r_.boolean(at.field("use_remote_address")) == false) {
      warn(at.field("use_remote_address"),
           "corral appends the peer address to x-forwarded-for whatever this says");
    }
    hcm.generate_request_id = r_.boolean(at.field("generate_request_id")).value_or(true);
    hcm.max_request_headers_kb = static_cast<uint32_t>(
        r_.uint(at.field("max_request_headers_kb"), false, 8192).value_or(60));
    if (hcm.max_request_headers_kb == 0) {
      r_.error(at.field("max_request_headers_kb"), "must be at least 1");
      hcm.max_request_headers_kb = 60;
    }
    hcm.stream_idle_timeout =
        r_.duration(at.field("stream_idle_timeout")).value_or(hcm.stream_idle_timeout);
    hcm.request_timeout = r_.duration(at.field("request_timeout")).value_or(hcm.request_timeout);
    At common = at.field("common_http_protocol_options");
    if (common.present() && r_.mapping(common, {"idle_timeout", "max_headers_count"})) {
      hcm.idle_timeout = r_.duration(common.field("idle_timeout")).value_or(hcm.idle_timeout);
      hcm.max_headers_count = static_cast<uint32_t>(
          r_.uint(common.field("max_headers_count"), false, 10000).value_or(100));
    }
    At rc = at.field("route_config");
    if (!rc.present()) {
      r_.error(rc, "required field is missing (only an inline route_config is supported)");
    } else {
      loadRouteConfig(rc, hcm.route_config);
    }
    loadHttpFilters(at.field("http_filters"), hcm);
    loadAccessLogs(at.field("access_log"), hcm);
  }

  void loadHttpFilters(const At& at, HttpConnectionManager& hcm) {
    if (!at.present()) {
      r_.error(at, "required field is missing (the last filter must be envoy.filters.http.router)");
      return;
    }
    if (!r_.sequence(at)) {
      return;
    }
    for (size_t i = 0; i < at.node.size(); ++i) {
      At f = at.index(i);
      if (!r_.mapping(f, {"name", "typed_config"})) {
        continue;
      }
      HttpFilter filter;
      filter.name = r_.string(f.field("name"), true).value_or("");
      At tc = f.field("typed_config");
      if (tc.present()) {
        filter.typed_config = typedConfig(tc, {});
      } else {
        filter.typed_config.path = tc.path;
      }
      hcm.http_filters.push_back(std::move(filter));
    }
  }

  void loadAccessLogs(const At& at, HttpConnectionManager& hcm) {
    if (!at.present() || !r_.sequence(at)) {
      return;
    }
    for (size_t i = 0; i < at.node.size(); ++i) {
      At a = at.index(i);
      if (!r_.mapping(a, {"name", "typed_config"})) {
        continue;
      }
      r_.string(a.field("name"), false);
      At tc = a.field("typed_config");
      if (!tc.present()) {
        r_.error(tc, "required field is missing");
        continue;
      }
      TypedConfig typed = typedConfig(tc, {kStdoutLogType, kStderrLogType, kFileLogType});
      AccessLog log;
      if (typed.type_url == kFileLogType) {
        if (!r_.mapping(tc, {"@type", "path", "log_format", "format"})) {
          continue;
        }
        log.sink = AccessLog::Sink::File;
        log.path = r_.string(tc.field("path"), true).value_or("");
        log.format = r_.string(tc.field("format"), false).value_or("");
      } else if (typed.type_url == kStdoutLogType || typed.type_url == kStderrLogType) {
        if (!r_.mapping(tc, {"@type", "log_format"})) {
          continue;
        }
        log.sink =
            typed.type_url == kStdoutLogType ? AccessLog::Sink::Stdout : AccessLog::Sink::Stderr;
      } else {
        r_.error(tc, "\"@type\" is required for an access log");
        continue;
      }
      At lf = tc.field("log_format");
      if (lf.present() && r_.mapping(lf, {"text_format_source", "text_format"})) {
        if (lf.field("text_format").present()) {
          log.format = r_.string(lf.field("text_format"), false).value_or("");
        }
        At src = lf.field("text_format_source");
        if (src.present() && r_.mapping(src, {"inline_string"})) {
          log.format = r_.string(src.field("inline_string"), true).value_or("");
        }
      }
      hcm.access_logs.push_back(std::move(log));
    }
  }

  PerFilterConfigs loadPerFilter(const At& at) {
    PerFilterConfigs out;
    if (!at.present()) {
      return out;
    }
    if (!at.node.IsMap()) {
      r_.error(at, "expected a mapping of filter name to config");
      return out;
    }
    for (const auto& kv : at.node) {
      const std::string name = kv.first.Scalar();
      At child{kv.second, at.path + "." + name, kv.second.Mark()};
      out[name] = typedConfig(child, {});
    }
    return out;
  }

  void loadRouteConfig(const At& at, RouteConfiguration& rc) {
    if (!r_.mapping(at, {"name", "virtual_hosts"})) {
      return;
    }
    rc.name = r_.string(at.field("name"), false).value_or("");
    At vhs = at.field("virtual_hosts");
    if (!vhs.present() || !r_.sequence(vhs)) {
      if (!vhs.present()) {
        r_.error(vhs, "required field is missing");
      }
      return;
    }
    std::set<std::string> all_domains;
    for (size_t i = 0; i < vhs.node.size(); ++i) {
      At v = vhs.index(i);
      if (!r_.mapping(v, {"name", "domains", "routes", "typed_per_filter_config"})) {
        continue;
      }
      VirtualHost vh;
      vh.name = r_.string(v.field("name"), true).value_or("");
      At domains = v.field("domains");
      if (!domains.present()) {
        r_.error(domains, "required field is missing");
      } else if (r_.sequence(domains)) {
        for (size_t j = 0; j < domains.node.size(); ++j) {
          At d = domains.index(j);
          auto s = r_.string(d, true);
          if (!s) {
            continue;
          }
          std::string dom = lower(*s);
          const size_t star = dom.find('*');
          if (star != std::string::npos && dom != "*" && star != 0 && star != dom.size() - 1) {
            r_.error(d,
                     "a wildcard must be the whole domain, a prefix (*.example.com) or a "
                     "suffix (example.*)");
          } else if (dom.find('*', star == std::string::npos ? 0 : star + 1) != std::string::npos) {
            r_.error(d, "only one wildcard is allowed in a domain");
          } else if (!all_domains.insert(dom).second) {
            r_.error(d, fmt::format("domain \"{}\" appears in more than one virtual host", dom));
          }
          vh.domains.push_back(std::move(dom));
        }
      }
      vh.typed_per_filter_config = loadPerFilter(v.field("typed_per_filter_config"));
      At routes = v.field("routes");
      if (routes.present() && r_.sequence(routes)) {
        for (size_t j = 0; j < routes.node.size(); ++j) {
          loadRoute(routes.index(j), vh);
        }
      }
      rc.virtual_hosts.push_back(std::move(vh));
    }
  }

  std::shared_ptr<const re2::RE2> regex(const At& at) {
    // Envoy's RegexMatcher: {google_re2: {}, regex: "..."}.
    if (!r_.mapping(at, {"google_re2", "regex"})) {
      return nullptr;
    }
    auto s = r_.string(at.field("regex"), true);
    if (!s) {
      return nullptr;
    }
    auto re = std::make_shared<re2::RE2>(*s, re2::RE2::Quiet);
    if (!re->ok()) {
      r_.error(at.field("regex"), fmt::format("invalid regex: {}", re->error()));
      return nullptr;
    }
    return re;
  }

  void loadHeaderMatcher(const At& h, std::vector<HeaderMatcher>& out) {
    if (!r_.mapping(h, {"name", "exact_match", "prefix_match", "suffix_match", "contains_match",
                        "safe_regex_match", "present_match", "string_match", "invert_match"})) {
      return;
    }
    HeaderMatcher m;
    m.name = lower(r_.string(h.field("name"), true).value_or(""));
    m.invert = r_.boolean(h.field("invert_match")).value_or(false);
    int kinds = 0;
    auto take = [&](const char* field, HeaderMatcher::Kind kind) {
      if (h.field(field).present()) {
        ++kinds;
        m.kind = kind;
        m.value = r_.string(h.field(field), true).value_or("");
      }
    };
    take("exact_match", HeaderMatcher::Kind::Exact);
    take("prefix_match", HeaderMatcher::Kind::Prefix);
    take("suffix_match", HeaderMatcher::Kind::Suffix);
    take("contains_match", HeaderMatcher::Kind::Contains);
    if (h.field("safe_regex_match").present()) {
      ++kinds;
      m.kind = HeaderMatcher::Kind::Regex;
      m.regex = regex(h.field("safe_regex_match"));
    }
    if (h.field("present_match").present()) {
      ++kinds;
      m.kind = HeaderMatcher::Kind::Present;
      m.present = r_.boolean(h.field("present_match")).value_or(true);
    }
    At sm = h.field("string_match");
    if (sm.present()) {
      ++kinds;
      if (r_.mapping(sm, {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"})) {
        int inner = 0;
        auto takeInner = [&](const char* field, HeaderMatcher::Kind kind) {
          if (sm.field(field).present()) {
            ++inner;
            m.kind = kind;
            m.value = r_.string(sm.field(field), true).value_or("");
          }
        };
        takeInner("exact", HeaderMatcher::Kind::Exact);
        takeInner("prefix", HeaderMatcher::Kind::Prefix);
        takeInner("suffix", HeaderMatcher::Kind::Suffix);
        takeInner("contains", HeaderMatcher::Kind::Contains);
        if (sm.field("safe_regex").present()) {
          ++inner;
          m.kind = HeaderMatcher::Kind::Regex;
          m.regex = regex(sm.field("safe_regex"));
        }
        if (r_.boolean(sm.field("ignore_case")).value_or(false)) {
          r_.error(sm.field("ignore_case"), "ignore_case is not supported");
        }
        if (inner != 1) {
          r_.error(sm, "exactly one of exact, prefix, suffix, contains, safe_regex is required");
        }
      }
    }
    if (kinds > 1) {
      r_.error(h, "at most one match kind may be given");
    }
    out.push_back(std::move(m));
  }

  void loadRoute(const At& at, VirtualHost& vh) {
    if (!r_.mapping(at, {"name", "match", "route", "direct_response", "typed_per_filter_config"})) {
      return;
    }
    Route route;
    route.name = r_.string(at.field("name"), false).value_or("");
    At match = at.field("match");
    if (!match.present()) {
      r_.error(match, "required field is missing");
    } else if (r_.mapping(match, {"prefix", "path", "safe_regex", "headers", "case_sensitive"})) {
      int kinds = 0;
      if (match.field("prefix").present()) {
        ++kinds;
        route.match.kind = RouteMatch::Kind::Prefix;
        route.match.value = r_.string(match.field("prefix"), true).value_or("");
      }
      if (match.field("path").present()) {
        ++kinds;
        route.match.kind = RouteMatch::Kind::Path;
        route.match.value = r_.string(match.field("path"), true).value_or("");
      }
      if (match.field("safe_regex").present()) {
        ++kinds;
        route.match.kind = RouteMatch::Kind::Regex;
        route.match.regex = regex(match.field("safe_regex"));
      }
      if (kinds != 1) {
        r_.error(match, "exactly one of prefix, path, safe_regex is required");
      }
      route.match.case_sensitive = r_.boolean(match.field("case_sensitive")).value_or(true);
      At headers = match.field("headers");
      if (headers.present() && r_.sequence(headers)) {
        for (size_t i = 0; i < headers.node.size(); ++i) {
          loadHeaderMatcher(headers.index(i), route.match.headers);
        }
      }
    }
    At ra = at.field("route");
    At dr = at.field("direct_response");
    if (ra.present() == dr.present()) {
      r_.error(at, "exactly one of route, direct_response is required");
    }
    if (ra.present() &&
        r_.mapping(ra, {"cluster", "prefix_rewrite", "host_rewrite_literal", "timeout"})) {
      RouteAction action;
      action.cluster = r_.string(ra.field("cluster"), true).value_or("");
      action.prefix_rewrite = r_.string(ra.field("prefix_rewrite"), false);
      action.host_rewrite_literal = r_.string(ra.field("host_rewrite_literal"), false);
      action.timeout = r_.duration(ra.field("timeout")).value_or(action.timeout);
      route.route = std::move(action);
      cluster_refs_.push_back({ra.field("cluster"), route.route->cluster});
    }
    if (dr.present() && r_.mapping(dr, {"status", "body"})) {
      DirectResponse d;
      auto status = r_.uint(dr.field("status"), true, 599);
      if (status && *status < 100) {
        r_.error(dr.field("status"), "must be between 100 and 599");
      }
      d.status = static_cast<uint32_t>(status.value_or(200));
      At body = dr.field("body");
      if (body.present() && r_.mapping(body, {"inline_string"})) {
        d.body = r_.string(body.field("inline_string"), true).value_or("");
      }
      route.direct_response = std::move(d);
    }
    route.typed_per_filter_config = loadPerFilter(at.field("typed_per_filter_config"));
    vh.routes.push_back(std::move(route));
  }

  void checkReferences(const At&, const Bootstrap& b) {
    for (const auto& [at, name] : cluster_refs_) {
      if (name.empty()) {
        continue;
      }
      bool found = std::any_of(b.clusters.begin(), b.clusters.end(),
                               [&](const Cluster& c) { return c.name == name; });
      if (!found) {
        r_.error(at, fmt::format("unknown cluster \"{}\"", name));
      }
    }
  }

  void warn(const At& at, const std::string& message) {
    Errors w;
    w.add(at.mark, at.path, message);
    warnings_->push_back(w.joined());
  }

  Reader r_;
  std::vector<std::string>* warnings_ = nullptr;
  std::vector<std::pair<At, std::string>> cluster_refs_;
};

}  // namespace

absl::StatusOr<Bootstrap> loadBootstrapFromString(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("YAML syntax error (line {}): {}", e.mark.line + 1, e.msg));
  }
  Errors errors;
  Loader loader(errors);
  Bootstrap b = loader.load(root);
  if (!errors.empty()) {
    return absl::InvalidArgumentError(errors.joined());
  }
  return b;
}

absl::StatusOr<Bootstrap> loadBootstrapFromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(fmt::format("cannot read config file \"{}\"", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return loadBootstrapFromString(ss.str());
}

}  // namespace corral::config
