// The stream-message encodings both sides share, and the stats forwarding: round trips, and
// what the proxy does with input a hostile sandbox could send (truncated, oversized, random).

#include <random>

#include <gtest/gtest.h>

#include "source/sandbox/stats_forwarding.h"
#include "source/sandbox/stream_messages.h"

namespace corral::sandbox {
namespace {

TEST(WireTest, RoundTripAndTruncation) {
  std::string p;
  WireWriter w(p);
  http::HeaderMap h;
  h.add(":status", "200");
  h.add("x-a", "b");
  w.u64(7);
  w.bytes("hello");
  w.headers(h);
  w.u8(1);
  WireReader r(p);
  EXPECT_EQ(r.u64(), 7u);
  EXPECT_EQ(r.bytes(), "hello");
  http::HeaderMap out;
  r.headers(out);
  EXPECT_TRUE(r.boolean());
  EXPECT_TRUE(r.done());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out.getView("x-a"), "b");
  // Every strict prefix is refused, and nothing is read past the end.
  for (size_t n = 0; n < p.size(); ++n) {
    WireReader t(std::string_view(p).substr(0, n));
    t.u64();
    t.bytes();
    http::HeaderMap ignored;
    t.headers(ignored);
    t.boolean();
    EXPECT_FALSE(t.done()) << n;
  }
  // A boolean is 0 or 1; a length past the end fails the reader.
  std::string bad;
  WireWriter bw(bad);
  bw.u8(2);
  WireReader br(bad);
  br.boolean();
  EXPECT_FALSE(br.ok());
  std::string longer;
  WireWriter lw(longer);
  lw.u32(1000);
  WireReader lr(longer);
  EXPECT_EQ(lr.bytes(), "");
  EXPECT_FALSE(lr.ok());
}

TEST(WireTest, HeaderCountIsBounded) {
  std::string p;
  WireWriter w(p);
  w.u32(kMaxHeaderFields + 1);
  WireReader r(p);
  http::HeaderMap out;
  r.headers(out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(out.size(), 0u);
}

TEST(StreamMessagesTest, InfoStateRoundTrip) {
  http::StreamInfo info;
  info.dynamic_metadata["f"] = "struct-bytes";
  info.filter_state["k"] = "v";
  info.upstream_override_host = std::make_pair(std::string("10.0.0.1:80"), true);
  info.drain_connection_upon_completion = true;
  info.route_cache_clears = 3;
  const InfoState s = InfoState::of(info);
  std::string p;
  WireWriter w(p);
  writeInfoState(w, s);
  WireReader r(p);
  InfoState back;
  readInfoState(r, back);
  EXPECT_TRUE(r.done());
  EXPECT_TRUE(back == s);
  EXPECT_TRUE(back.sameAs(info));
  info.filter_state["k2"] = "v2";
  EXPECT_FALSE(back.sameAs(info));
}

TEST(StreamMessagesTest, RandomInputNeverReadsOutOfBounds) {
  std::mt19937 rng(1);
  for (int i = 0; i < 20000; ++i) {
    std::string p(rng() % 200, '\0');
    for (auto& c : p) {
      c = static_cast<char>(rng());
    }
    WireReader r(p);
    InfoState s;
    readInfoState(r, s);
    WireReader r2(p);
    http::StreamInfo info;
    readInfo(r2, info, true);
  }
}

TEST(StatsForwardingTest, CountersGaugesAndHistogramsArriveOnce) {
  stats::Store sandbox_side, proxy_side;
  StatsReporter reporter(sandbox_side);
  StatsMirror mirror(proxy_side);
  sandbox_side.counter("plugin.requests").inc(3);
  sandbox_side.counter("http.x.golang.panic_error");  // zero: shows up all the same
  sandbox_side.gauge("plugin.inflight").inc(2);
  sandbox_side.histogram("plugin.latency").record(7);
  ASSERT_TRUE(mirror.apply(100, reporter.changes()));
  EXPECT_EQ(reporter.changes(), "");  // nothing new
  sandbox_side.counter("plugin.requests").inc(2);
  sandbox_side.gauge("plugin.inflight").dec(1);
  ASSERT_TRUE(mirror.apply(100, reporter.changes()));
  EXPECT_EQ(proxy_side.counter("plugin.requests").value(), 5u);
  EXPECT_EQ(proxy_side.counter("http.x.golang.panic_error").value(), 0u);
  EXPECT_EQ(proxy_side.gauge("plugin.inflight").value(), 1);
  EXPECT_EQ(proxy_side.histogram("plugin.latency").count(), 1u);
  // A second process adds its own; a dead one's gauges are taken back.
  stats::Store other;
  StatsReporter other_reporter(other);
  other.gauge("plugin.inflight").inc(4);
  other.counter("plugin.requests").inc(1);
  ASSERT_TRUE(mirror.apply(200, other_reporter.changes()));
  EXPECT_EQ(proxy_side.gauge("plugin.inflight").value(), 5);
  mirror.forget(100);
  EXPECT_EQ(proxy_side.gauge("plugin.inflight").value(), 4);
  EXPECT_EQ(proxy_side.counter("plugin.requests").value(), 6u);  // counters stay
}

TEST(StatsForwardingTest, HostileUpdatesChangeNothing) {
  stats::Store proxy_side;
  StatsMirror mirror(proxy_side);
  proxy_side.counter("sandbox.lib.crash");
  // The proxy's own names are not a sandbox's to move.
  std::string p;
  WireWriter w(p);
  w.u32(2);
  w.bytes("sandbox.lib.crash");
  w.u64(100);
  w.bytes("http.ingress.downstream_rq_total");
  w.u64(100);
  w.u32(0);
  w.u32(0);
  ASSERT_TRUE(mirror.apply(1, p));
  EXPECT_EQ(proxy_side.counter("sandbox.lib.crash").value(), 0u);
  EXPECT_EQ(proxy_side.counter("http.ingress.downstream_rq_total").value(), 0u);
  // Malformed: a bad entry after a good one applies neither.
  std::string q;
  WireWriter v(q);
  v.u32(2);
  v.bytes("plugin.ok");
  v.u64(1);
  v.bytes("bad name\n");
  v.u64(1);
  v.u32(0);
  v.u32(0);
  EXPECT_FALSE(mirror.apply(1, q));
  EXPECT_EQ(proxy_side.counter("plugin.ok").value(), 0u);
  // Claims of more entries than any message holds.
  std::string r;
  WireWriter x(r);
  x.u32(1000000);
  EXPECT_FALSE(mirror.apply(1, r));
  // Random bytes: refused or harmless, never a crash.
  std::mt19937 rng(2);
  for (int i = 0; i < 5000; ++i) {
    std::string g(rng() % 100, '\0');
    for (auto& c : g) {
      c = static_cast<char>(rng());
    }
    mirror.apply(1, g);
  }
}

TEST(StatsForwardingTest, NamesAreCapped) {
  stats::Store proxy_side;
  StatsMirror mirror(proxy_side);
  for (size_t batch = 0; batch < StatsMirror::kMaxNames / 1000 + 2; ++batch) {
    std::string p;
    WireWriter w(p);
    w.u32(1000);
    for (size_t i = 0; i < 1000; ++i) {
      w.bytes("plugin.n" + std::to_string(batch * 1000 + i));
      w.u64(1);
    }
    w.u32(0);
    w.u32(0);
    ASSERT_TRUE(mirror.apply(1, p));
  }
  EXPECT_LE(proxy_side.snapshot().size(), StatsMirror::kMaxNames);
}

}  // namespace
}  // namespace corral::sandbox
