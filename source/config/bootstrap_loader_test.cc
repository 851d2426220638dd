#include "source/config/bootstrap_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::config {
namespace {

using ::testing::HasSubstr;

constexpr const char* kHcmType =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager";

std::string listenerYaml(const std::string& hcm_extra, const std::string& routes) {
  return std::string(R"(static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": )") +
         kHcmType + R"(
          stat_prefix: ingress
)" + hcm_extra +
         R"(          route_config:
            virtual_hosts:
            - name: v
              domains: ["*"]
              routes:
)" + routes +
         R"(          http_filters:
          - name: envoy.filters.http.router
  clusters:
  - name: c
    connect_timeout: 0.25s
    type: STATIC
    lb_policy: LEAST_REQUEST
    circuit_breakers: {thresholds: [{max_connections: 7, max_pending_requests: 8, max_requests: 9}]}
    load_assignment:
      cluster_name: c
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
        - endpoint: {address: {socket_address: {address: "::1", port_value: 81}}}
)";
}

const char* kRoute =
    "              - match: {prefix: \"/\"}\n"
    "                route: {cluster: c, timeout: 1.5s, prefix_rewrite: /x}\n";

std::string errorsOf(const std::string& yaml) {
  auto b = loadBootstrapFromString(yaml);
  EXPECT_FALSE(b.ok());
  return b.ok() ? "" : std::string(b.status().message());
}

TEST(BootstrapLoaderTest, ParsesAFullConfig) {
  auto b = loadBootstrapFromString(listenerYaml(
      "          stream_idle_timeout: 10s\n          request_timeout: 0.5s\n", kRoute));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->listeners.size(), 1u);
  const auto& l = b->listeners[0];
  EXPECT_EQ(l.address.port, 8080u);
  EXPECT_EQ(l.hcm.stat_prefix, "ingress");
  EXPECT_EQ(l.hcm.stream_idle_timeout, Millis(10000));
  EXPECT_EQ(l.hcm.request_timeout, Millis(500));
  EXPECT_EQ(l.hcm.idle_timeout, Millis(3600000));
  ASSERT_EQ(l.hcm.http_filters.size(), 1u);
  EXPECT_EQ(l.hcm.http_filters[0].name, "envoy.filters.http.router");
  const auto& route = l.hcm.route_config.virtual_hosts[0].routes[0];
  ASSERT_TRUE(route.route.has_value());
  EXPECT_EQ(route.route->timeout, Millis(1500));
  EXPECT_EQ(route.route->prefix_rewrite, "/x");
  ASSERT_EQ(b->clusters.size(), 1u);
  const auto& c = b->clusters[0];
  EXPECT_EQ(c.connect_timeout, Millis(250));
  EXPECT_EQ(c.lb_policy, Cluster::LbPolicy::LeastRequest);
  EXPECT_EQ(c.circuit_breakers.max_connections, 7u);
  EXPECT_EQ(c.circuit_breakers.max_pending_requests, 8u);
  EXPECT_EQ(c.circuit_breakers.max_requests, 9u);
  ASSERT_EQ(c.endpoints.size(), 2u);
  EXPECT_EQ(c.endpoints[1].address, "::1");
}

TEST(BootstrapLoaderTest, UnknownFieldNamesPathAndLine) {
  const std::string msg = errorsOf(listenerYaml("          bogus: 1\n", kRoute));
  EXPECT_THAT(msg, HasSubstr("static_resources.listeners[0].filter_chains[0].filters[0]."
                             "typed_config.bogus (line 11): unknown field"));
}

TEST(BootstrapLoaderTest, ReportsEveryErrorAtOnce) {
  const std::string msg =
      errorsOf(listenerYaml("          stream_idle_timeout: 5\n          codec_type: HTTP2\n",
                            "              - match: {prefix: \"/\", path: \"/x\"}\n"
                            "                route: {cluster: nope}\n"));
  EXPECT_THAT(msg, HasSubstr("stream_idle_timeout (line 11): expected a duration"));
  EXPECT_THAT(msg, HasSubstr("codec_type (line 12): only HTTP/1.1 is supported"));
  EXPECT_THAT(msg, HasSubstr("exactly one of prefix, path, safe_regex is required"));
  EXPECT_THAT(msg, HasSubstr("unknown cluster \"nope\""));
}

TEST(BootstrapLoaderTest, MissingRequiredFields) {
  EXPECT_THAT(errorsOf("admin: {}\n"),
              HasSubstr("static_resources (line 1): required field is missing"));
  EXPECT_THAT(errorsOf("admin: {}\nstatic_resources: {}\n"),
              HasSubstr("admin.address (line 1): required field is missing"));
  EXPECT_THAT(
      errorsOf("static_resources:\n  clusters:\n  - name: x\n"),
      HasSubstr(
          "static_resources.clusters[0].load_assignment (line 3): required field is missing"));
}

TEST(BootstrapLoaderTest, BadValues) {
  EXPECT_THAT(errorsOf("static_resources:\n  clusters:\n  - name: x\n    type: EDS\n"
                       "    load_assignment: {endpoints: []}\n"),
              HasSubstr("static_resources.clusters[0].type (line 4): unknown value \"EDS\""));
  EXPECT_THAT(errorsOf("static_resources:\n  clusters:\n  - name: x\n    connect_timeout: 1ms\n"
                       "    load_assignment: {endpoints: []}\n"),
              HasSubstr("connect_timeout (line 4): expected a duration"));
  EXPECT_THAT(errorsOf("static_resources:\n  clusters:\n  - name: x\n"
                       "    load_assignment:\n      endpoints:\n      - lb_endpoints:\n"
                       "        - endpoint: {address: {socket_address: {address: example.com, "
                       "port_value: 80}}}\n"),
              HasSubstr("is not an IP address; a STATIC cluster needs IP addresses"));
  EXPECT_THAT(errorsOf("static_resources:\n  clusters:\n  - {name: x, load_assignment: "
                       "{endpoints: []}}\n  - {name: x, load_assignment: {endpoints: []}}\n"),
              HasSubstr("duplicate cluster name \"x\""));
}

TEST(BootstrapLoaderTest, RouteErrors) {
  EXPECT_THAT(errorsOf(listenerYaml("",
                                    "              - match: {safe_regex: {regex: \"(\"}}\n"
                                    "                direct_response: {status: 200}\n")),
              HasSubstr("routes[0].match.safe_regex.regex (line 16): invalid regex"));
  EXPECT_THAT(errorsOf(listenerYaml("",
                                    "              - match: {prefix: \"/\"}\n"
                                    "                direct_response: {status: 42}\n")),
              HasSubstr("routes[0].direct_response.status (line 17): must be between 100 and 599"));
  EXPECT_THAT(errorsOf(listenerYaml("", "              - match: {prefix: \"/\"}\n")),
              HasSubstr("exactly one of route, direct_response is required"));
}

TEST(BootstrapLoaderTest, DomainRules) {
  auto yaml = listenerYaml("", kRoute);
  const std::string dup = yaml;
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  EXPECT_THAT(errorsOf(replace(yaml, "domains: [\"*\"]", "domains: [\"a.*.com\"]")),
              HasSubstr("a wildcard must be the whole domain"));
  EXPECT_THAT(errorsOf(replace(yaml, "domains: [\"*\"]", "domains: [\"x\", \"X\"]")),
              HasSubstr("domain \"x\" appears in more than one virtual host"));
}

TEST(BootstrapLoaderTest, AccessLogAndPerFilterConfig) {
  auto b = loadBootstrapFromString(listenerYaml(
      "          access_log:\n"
      "          - name: envoy.access_loggers.file\n"
      "            typed_config:\n"
      "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3."
      "FileAccessLog\n"
      "              path: /tmp/x.log\n"
      "              log_format: {text_format_source: {inline_string: \"%RESPONSE_CODE%\\n\"}}\n",
      "              - match: {prefix: \"/\"}\n"
      "                route: {cluster: c}\n"
      "                typed_per_filter_config:\n"
      "                  envoy.filters.http.golang:\n"
      "                    \"@type\": type.googleapis.com/envoy.extensions.filters.http.golang."
      "v3alpha.ConfigsPerRoute\n"));
  ASSERT_TRUE(b.ok()) << b.status();
  const auto& hcm = b->listeners[0].hcm;
  ASSERT_EQ(hcm.access_logs.size(), 1u);
  EXPECT_EQ(hcm.access_logs[0].sink, AccessLog::Sink::File);
  EXPECT_EQ(hcm.access_logs[0].format, "%RESPONSE_CODE%\n");
  const auto& per = hcm.route_config.virtual_hosts[0].routes[0].typed_per_filter_config;
  ASSERT_EQ(per.count("envoy.filters.http.golang"), 1u);
  EXPECT_THAT(per.at("envoy.filters.http.golang").type_url, HasSubstr("ConfigsPerRoute"));
}

TEST(BootstrapLoaderTest, AcceptedButInertFieldsWarn) {
  auto b = loadBootstrapFromString(
      "admin:\n  access_log_path: /dev/null\n  address: {socket_address: {address: 127.0.0.1, "
      "port_value: 0}}\nstatic_resources:\n  clusters:\n  - name: x\n    type: STRICT_DNS\n"
      "    dns_lookup_family: V4_ONLY\n    dns_refresh_rate: 5s\n"
      "    load_assignment: {endpoints: []}\n");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->clusters[0].dns_lookup_family, Cluster::DnsLookupFamily::V4Only);
  ASSERT_EQ(b->warnings.size(), 2u);
  EXPECT_THAT(b->warnings[0], HasSubstr("admin.access_log_path (line 2): not implemented"));
  EXPECT_THAT(b->warnings[1],
              HasSubstr("static_resources.clusters[0].dns_refresh_rate (line 9): not implemented"));
}

TEST(BootstrapLoaderTest, SyntaxErrorAndMissingFile) {
  EXPECT_THAT(errorsOf("a: [b"), HasSubstr("YAML syntax error (line"));
  auto f = loadBootstrapFromFile("/nonexistent/corral.yaml");
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("cannot read config file"));
}

}  // namespace
}  // namespace corral::config
