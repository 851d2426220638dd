#include "source/http/route_table.h"

#include <gtest/gtest.h>

#include "source/config/bootstrap_loader.h"

namespace corral::http {
namespace {

config::Bootstrap load(const std::string& vhosts) {
  const std::string yaml = R"(static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: 1}}
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          stat_prefix: s
          http_filters: [{name: envoy.filters.http.router}]
          route_config:
            virtual_hosts:
)" + vhosts + R"(
  clusters:
  - {name: c, load_assignment: {endpoints: []}}
)";
  auto b = config::loadBootstrapFromString(yaml);
  EXPECT_TRUE(b.ok()) << b.status();
  return *b;
}

HeaderMap request(std::string_view authority, std::string_view path) {
  HeaderMap h;
  h.add(":method", "GET");
  h.add(":authority", authority);
  h.add(":path", path);
  return h;
}

std::string routeName(const RouteTable& t, const HeaderMap& h) {
  auto r = t.route(h);
  return r ? r->entry->name : "<none>";
}

TEST(RouteTableTest, DomainPrecedence) {
  auto b = load(
      R"(            - {name: any, domains: ["*"], routes: [{name: any, match: {prefix: /}, route: {cluster: c}}]}
            - {name: ex, domains: [a.example.com], routes: [{name: exact, match: {prefix: /}, route: {cluster: c}}]}
            - {name: sfx, domains: ["*.example.com"], routes: [{name: suffix, match: {prefix: /}, route: {cluster: c}}]}
            - {name: lsfx, domains: ["*.b.example.com"], routes: [{name: long, match: {prefix: /}, route: {cluster: c}}]}
            - {name: pfx, domains: ["api.*"], routes: [{name: prefix, match: {prefix: /}, route: {cluster: c}}]})");
  RouteTable t(b.listeners[0].hcm.route_config);
  EXPECT_EQ(routeName(t, request("a.example.com", "/")), "exact");
  EXPECT_EQ(routeName(t, request("A.Example.COM", "/")), "exact");
  EXPECT_EQ(routeName(t, request("x.example.com", "/")), "suffix");
  EXPECT_EQ(routeName(t, request("x.b.example.com", "/")), "long");
  EXPECT_EQ(routeName(t, request(".example.com", "/")), "any");  // suffix needs a label
  EXPECT_EQ(routeName(t, request("api.org", "/")), "prefix");
  EXPECT_EQ(routeName(t, request("a.example.com:80", "/")), "any");  // port is part of the host
}

TEST(RouteTableTest, MatchersInOrder) {
  auto b = load(R"(            - name: v
              domains: ["*"]
              routes:
              - {name: path, match: {path: /exact}, route: {cluster: c}}
              - {name: ci, match: {prefix: /CI, case_sensitive: false}, route: {cluster: c}}
              - {name: re, match: {safe_regex: {google_re2: {}, regex: "/u/[0-9]+"}}, route: {cluster: c}}
              - name: hdr
                match:
                  prefix: /h
                  headers:
                  - {name: X-Env, exact_match: prod}
                  - {name: x-debug, present_match: true, invert_match: true}
                route: {cluster: c}
              - {name: method, match: {prefix: /, headers: [{name: ":method", string_match: {exact: POST}}]}, route: {cluster: c}}
              - {name: rest, match: {prefix: /r}, route: {cluster: c}})");
  RouteTable t(b.listeners[0].hcm.route_config);
  EXPECT_EQ(routeName(t, request("h", "/exact?x=1")), "path");
  EXPECT_EQ(routeName(t, request("h", "/exact/more")), "<none>");
  EXPECT_EQ(routeName(t, request("h", "/ci/x")), "ci");
  EXPECT_EQ(routeName(t, request("h", "/u/42")), "re");
  EXPECT_EQ(routeName(t, request("h", "/u/42x")), "<none>");
  auto h = request("h", "/h");
  h.add("x-env", "prod");
  EXPECT_EQ(routeName(t, h), "hdr");
  h.add("x-debug", "1");
  EXPECT_EQ(routeName(t, h), "<none>");
  auto post = request("h", "/anything");
  post.set(":method", "POST");
  EXPECT_EQ(routeName(t, post), "method");
  EXPECT_EQ(routeName(t, request("h", "/rx")), "rest");
}

TEST(RouteTableTest, Rewrites) {
  auto b = load(R"(            - name: v
              domains: ["*"]
              routes:
              - {match: {prefix: /api/}, route: {cluster: c, prefix_rewrite: /, host_rewrite_literal: backend}})");
  RouteTable t(b.listeners[0].hcm.route_config);
  auto h = request("front", "/api/v1?q");
  auto r = t.route(h);
  ASSERT_TRUE(r);
  applyRouteRewrites(*r->entry, h);
  EXPECT_EQ(h.getView(":path"), "/v1?q");
  EXPECT_EQ(h.getView(":authority"), "backend");
  EXPECT_EQ(h.getView("x-envoy-original-path"), "/api/v1?q");
}

}  // namespace
}  // namespace corral::http
