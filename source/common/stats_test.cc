#include "source/common/stats.h"

#include <thread>

#include <gtest/gtest.h>

namespace corral::stats {
namespace {

TEST(StatsTest, CounterSumsAcrossThreadSlots) {
  Store store;
  Counter& c = store.counter("http.ingress.downstream_rq_total");
  std::thread t1([&] {
    setThreadSlot(1);
    for (int i = 0; i < 1000; ++i) {
      c.inc();
    }
  });
  std::thread t2([&] {
    setThreadSlot(2);
    c.inc(500);
  });
  t1.join();
  t2.join();
  EXPECT_EQ(c.value(), 1500u);
  EXPECT_EQ(&store.counter("http.ingress.downstream_rq_total"), &c);
}

TEST(StatsTest, GaugeMayMoveAcrossThreads) {
  Store store;
  Gauge& g = store.gauge("cluster.a.upstream_cx_active");
  g.inc(3);
  std::thread t([&] {
    setThreadSlot(3);
    g.dec(2);
  });
  t.join();
  EXPECT_EQ(g.value(), 1);
}

TEST(StatsTest, TextFormatIsSortedNameColonValue) {
  Store store;
  store.counter("b.x").inc(2);
  store.gauge("a.y").inc(1);
  EXPECT_EQ(store.renderText(), "a.y: 1\nb.x: 2\n");
}

TEST(StatsTest, PrometheusExtractsEnvoyTags) {
  Store store;
  store.counter("cluster.web-1.upstream_rq_total").inc(4);
  store.counter("cluster.api.upstream_rq_total").inc(1);
  store.gauge("server.live").inc(1);
  const std::string text = store.renderPrometheus();
  EXPECT_NE(text.find("# TYPE envoy_cluster_upstream_rq_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"web-1\"} 4\n"),
            std::string::npos);
  EXPECT_NE(text.find("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"api\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(
      text.find("# TYPE envoy_cluster_upstream_rq_total", text.find("TYPE envoy_cluster") + 1),
      std::string::npos);
  EXPECT_NE(text.find("envoy_server_live 1\n"), std::string::npos);
}

}  // namespace
}  // namespace corral::stats
