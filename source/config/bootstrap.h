#pragma once
// The typed form of the subset of Envoy's v3 bootstrap that corral accepts. Produced by the
// loader (bootstrap_loader.h), immutable afterwards and shared read-only by all threads.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

namespace corral::config {

using Millis = std::chrono::milliseconds;

struct SocketAddress {
  std::string address;
  uint32_t port = 0;
};

// A filter-specific config block kept as YAML for the filter that owns it. `path` is its YAML
// path, so the filter's own validation can name it in errors.
struct TypedConfig {
  std::string type_url;  // the "@type" value, may be empty
  YAML::Node node;       // the whole typed_config mapping
  std::string path;
};
using PerFilterConfigs = std::map<std::string, TypedConfig>;

struct AccessLog {
  enum class Sink { Stdout, Stderr, File };
  Sink sink = Sink::Stdout;
  std::string path;    // for File
  std::string format;  // Envoy command-operator text format; empty = Envoy's default format
};

struct HeaderMatcher {
  enum class Kind { Exact, Prefix, Suffix, Contains, Regex, Present };
  std::string name;  // lower-cased
  Kind kind = Kind::Present;
  std::string value;
  std::shared_ptr<const re2::RE2> regex;
  bool present = true;  // for Present: whether the header must be present
  bool invert = false;
};

struct RouteMatch {
  enum class Kind { Prefix, Path, Regex };
  Kind kind = Kind::Prefix;
  std::string value;
  std::shared_ptr<const re2::RE2> regex;
  bool case_sensitive = true;
  std::vector<HeaderMatcher> headers;
};

struct RouteAction {
  std::string cluster;
  std::optional<std::string> prefix_rewrite;
  std::optional<std::string> host_rewrite_literal;
  Millis timeout{15000};  // Envoy's default; 0 disables
};

struct DirectResponse {
  uint32_t status = 200;
  std::string body;
};

struct Route {
  std::string name;
  RouteMatch match;
  std::optional<RouteAction> route;
  std::optional<DirectResponse> direct_response;
  PerFilterConfigs typed_per_filter_config;
};

struct VirtualHost {
  std::string name;
  std::vector<std::string> domains;  // lower-cased
  std::vector<Route> routes;
  PerFilterConfigs typed_per_filter_config;
};

struct RouteConfiguration {
  std::string name;
  std::vector<VirtualHost> virtual_hosts;
};

struct HttpFilter {
  std::string name;
  TypedConfig typed_config;
};

struct HttpConnectionManager {
  std::string stat_prefix;
  RouteConfiguration route_config;
  std::vector<HttpFilter> http_filters;
  std::vector<AccessLog> access_logs;
  Millis stream_idle_timeout{300000};  // Envoy's default 5 min; 0 disables
  Millis request_timeout{0};           // disabled by default, as in Envoy
  Millis idle_timeout{3600000};        // connection idle, Envoy's default 1 h; 0 disables
  uint32_t max_request_headers_kb = 60;
  uint32_t max_headers_count = 100;
  bool generate_request_id = true;
};

struct Listener {
  std::string name;
  SocketAddress address;
  HttpConnectionManager hcm;
};

struct CircuitBreakers {
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
};

struct Cluster {
  enum class Type { Static, StrictDns };
  enum class LbPolicy { RoundRobin, LeastRequest, Random };
  // Envoy's DnsLookupFamily; AUTO prefers IPv6 and falls back to IPv4.
  enum class DnsLookupFamily { Auto, V4Only, V6Only, V4Preferred, All };
  std::string name;
  Millis connect_timeout{5000};
  Type type = Type::Static;
  LbPolicy lb_policy = LbPolicy::RoundRobin;
  DnsLookupFamily dns_lookup_family = DnsLookupFamily::Auto;
  std::vector<SocketAddress> endpoints;
  CircuitBreakers circuit_breakers;
};

struct Bootstrap {
  std::optional<SocketAddress> admin_address;
  std::string node_id;
  std::string node_cluster;
  std::vector<Listener> listeners;
  std::vector<Cluster> clusters;
  // Fields accepted for compatibility whose effect corral does not (yet) have, one line each
  // with its YAML path; the server logs them at start-up and --mode validate prints them.
  std::vector<std::string> warnings;
  // corral's own section (top-level `corral:`).
  // How a Go plugin library runs (docs/sandbox.md). A library_id not listed gets the defaults.
  struct GolangLibrary {
    enum class Isolation { InProcess, Sandbox };
    enum class OnFailure { FailClosed, FailOpen };
    Isolation isolation = Isolation::Sandbox;
    uint32_t processes = 1;    // sandbox processes taking streams
    uint32_t warm_spares = 1;  // started and idle, to take over at once when one dies
    // Hard limit of a sandbox process's data (RLIMIT_DATA); GOMEMLIMIT is set below it.
    uint64_t memory_limit_bytes = 512ull << 20;
    Millis callback_timeout{5000};  // a stream waiting longer on Go gets 504
    Millis heartbeat_interval{1000};
    OnFailure on_failure = OnFailure::FailClosed;
    Millis restart_backoff_base{10};
    Millis restart_backoff_max{5000};
    bool seccomp = true;
    std::map<std::string, std::string> env;  // the plugin's whole environment
  };
  // corral.golang_libraries: per library_id of a Golang filter.
  std::map<std::string, GolangLibrary> golang_libraries;
  YAML::Node corral;
  YAML::Node raw;  // the whole document, for /config_dump
};

}  // namespace corral::config
