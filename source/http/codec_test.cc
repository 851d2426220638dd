#include "source/http/codec.h"

#include <gtest/gtest.h>

namespace corral::http {
namespace {

struct Recorder : public MessageCallbacks {
  void onHeaders(HeaderMapPtr h, bool end) override {
    headers = std::move(h);
    headers_end = end;
  }
  void onBody(std::string_view d) override { body += d; }
  void onTrailers(HeaderMapPtr t) override { trailers = std::move(t); }
  void onMessageComplete() override { ++complete; }
  Parser* parser = nullptr;
  HeaderMapPtr headers;
  HeaderMapPtr trailers;
  bool headers_end = false;
  std::string body;
  int complete = 0;
};

Parser::Result feedAll(Parser& p, std::string_view data) {
  return p.feed(data.data(), data.size());
}

TEST(CodecTest, RequestWithPseudoHeaders) {
  Recorder r;
  Parser p(Parser::Type::Request, r);
  auto res = feedAll(p, "GET /a?b=1 HTTP/1.1\r\nHost: Example.com\r\nX-Y: z\r\n\r\n");
  ASSERT_FALSE(res.error);
  ASSERT_TRUE(r.headers);
  EXPECT_EQ(r.headers->getView(":method"), "GET");
  EXPECT_EQ(r.headers->getView(":path"), "/a?b=1");
  EXPECT_EQ(r.headers->getView(":authority"), "Example.com");
  EXPECT_EQ(r.headers->getView(":scheme"), "http");
  EXPECT_EQ(r.headers->get("host"), nullptr);
  EXPECT_EQ(r.headers->getView("x-y"), "z");
  EXPECT_TRUE(r.headers_end);
  EXPECT_EQ(r.complete, 1);
  EXPECT_TRUE(p.keepAlive());
}

TEST(CodecTest, AbsoluteFormTarget) {
  Recorder r;
  Parser p(Parser::Type::Request, r);
  ASSERT_FALSE(feedAll(p, "GET http://h.example:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n").error);
  EXPECT_EQ(r.headers->getView(":authority"), "h.example:8080");
  EXPECT_EQ(r.headers->getView(":path"), "/p?q");
}

TEST(CodecTest, ChunkedBodyWithTrailersInPieces) {
  Recorder r;
  Parser p(Parser::Type::Request, r);
  const std::string msg =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
  // Byte by byte: every split point must work.
  for (char c : msg) {
    auto res = p.feed(&c, 1);
    ASSERT_FALSE(res.error) << res.error->details;
  }
  EXPECT_FALSE(r.headers_end);
  EXPECT_EQ(r.body, "hello world");
  ASSERT_TRUE(r.trailers);
  EXPECT_EQ(r.trailers->getView("x-t"), "1");
  EXPECT_EQ(r.complete, 1);
}

TEST(CodecTest, PipelinedRequestsPauseAfterEach) {
  Recorder r;
  Parser p(Parser::Type::Request, r);
  const std::string two = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  auto res = feedAll(p, two);
  ASSERT_FALSE(res.error);
  EXPECT_TRUE(p.paused());
  EXPECT_EQ(r.headers->getView(":path"), "/1");
  p.resume();
  res = p.feed(two.data() + res.consumed, two.size() - res.consumed);
  ASSERT_FALSE(res.error);
  EXPECT_EQ(r.headers->getView(":path"), "/2");
  EXPECT_EQ(r.complete, 2);
}

// 1100 bytes: over the 1024-byte limit the reject tests use.
#define TEN "0123456789"
#define HUNDRED TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN
#define LONG_VALUE \
  HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED

struct BadCase {
  const char* name;
  const char* raw;
  uint32_t status;
};

class CodecRejectTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(CodecRejectTest, Rejects) {
  Recorder r;
  Parser p(Parser::Type::Request, r, ParserLimits{1024, 10});
  auto res = feedAll(p, GetParam().raw);
  ASSERT_TRUE(res.error.has_value()) << GetParam().name;
  EXPECT_EQ(res.error->status, GetParam().status) << GetParam().name << ": " << res.error->details;
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, CodecRejectTest,
    ::testing::Values(
        BadCase{
            "cl_te",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400},
        BadCase{"two_cl",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400},
        BadCase{"bad_chunk",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n", 400},
        BadCase{"chunk_crlf",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY0\r\n\r\n",
                400},
        BadCase{"te_gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        BadCase{"space_name", "GET / HTTP/1.1\r\nHost: a\r\nA B: c\r\n\r\n", 400},
        BadCase{"fold", "GET / HTTP/1.1\r\nHost: a\r\nA: b\r\n c\r\n\r\n", 400},
        BadCase{"bare_cr", "GET / HTTP/1.1\r\nHost: a\r\nA: b\rc\r\n\r\n", 400},
        BadCase{"ctl_value", "GET / HTTP/1.1\r\nHost: a\r\nA: b\x01\r\n\r\n", 400},
        BadCase{"no_host", "GET / HTTP/1.1\r\n\r\n", 400},
        BadCase{"header_bytes", "GET / HTTP/1.1\r\nHost: a\r\nA: " LONG_VALUE "\r\n\r\n", 431},
        BadCase{"header_count",
                "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: "
                "1\r\nH: 1\r\nI: 1\r\nJ: 1\r\nK: 1\r\n\r\n",
                431},
        BadCase{"upgrade",
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
                403},
        BadCase{"http2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
        BadCase{"bad_version_letters", "GET / HXXP/1.1\r\nHost: a\r\n\r\n", 400}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(CodecTest, ResponseHeadAndInterim) {
  Recorder r;
  Parser p(Parser::Type::Response, r);
  p.setHeadRequest(true);
  auto res =
      feedAll(p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n");
  ASSERT_FALSE(res.error);
  ASSERT_TRUE(r.headers);
  EXPECT_EQ(r.headers->getView(":status"), "200");
  EXPECT_TRUE(r.headers_end);  // HEAD: no body whatever Content-Length says
  EXPECT_EQ(r.complete, 1);
}

TEST(CodecTest, CloseDelimitedResponse) {
  Recorder r;
  Parser p(Parser::Type::Response, r);
  ASSERT_FALSE(feedAll(p, "HTTP/1.1 200 OK\r\n\r\nabc").error);
  EXPECT_EQ(r.complete, 0);
  auto eof = p.feedEof();
  ASSERT_FALSE(eof.error) << eof.error->details;
  EXPECT_EQ(r.body, "abc");
  EXPECT_EQ(r.complete, 1);
}

TEST(CodecTest, UpstreamGarbageIs502) {
  Recorder r;
  Parser p(Parser::Type::Response, r);
  auto res = feedAll(p, "HTTX/1.1 200 OK\r\n\r\n");
  ASSERT_TRUE(res.error);
  EXPECT_EQ(res.error->status, 502u);
}

TEST(CodecTest, Encoders) {
  HeaderMap req;
  req.add(":method", "POST");
  req.add(":path", "/x");
  req.add(":authority", "h");
  req.add("a", "b");
  std::string out;
  encodeRequestHead(out, req);
  EXPECT_EQ(out, "POST /x HTTP/1.1\r\nhost: h\r\na: b\r\n\r\n");
  HeaderMap resp;
  resp.add(":status", "404");
  out.clear();
  encodeResponseHead(out, resp);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\n\r\n");
  out.clear();
  encodeChunk(out, "hello");
  encodeChunk(out, "");
  HeaderMap t;
  t.add("x", "1");
  encodeLastChunk(out, &t);
  EXPECT_EQ(out, "5\r\nhello\r\n0\r\nx: 1\r\n\r\n");
}

TEST(HeaderMapTest, SetAddRemoveTokens) {
  HeaderMap h;
  h.add("A", "1");
  h.add("a", "2");
  EXPECT_EQ(h.getAll("a").size(), 2u);
  h.set("A", "3");
  EXPECT_EQ(h.getAll("a").size(), 1u);
  EXPECT_EQ(h.getView("a"), "3");
  EXPECT_EQ(h.remove("a"), 1u);
  EXPECT_EQ(h.size(), 0u);
  EXPECT_TRUE(hasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_FALSE(hasToken("keep-alive", "close"));
}

TEST(HeaderMapTest, RemoveHopByHopHeaders) {
  HeaderMap h;
  h.add(":path", "/");
  h.add("x-before", "1");  // named by Connection below: removing it shifts the Connection entry
  h.add("keep-alive", "5");
  h.add("connection", "X-Before, x-after ,close, content-length");
  h.add("x-after", "2");
  h.add("content-length", "3");
  h.add("te", "gzip, trailers");
  h.add("transfer-encoding", "chunked");
  h.add("x-keep", "yes");
  HeaderMap response = h;
  removeHopByHopHeaders(h, /*keep_te_trailers=*/true);
  std::vector<std::string> keys;
  for (const auto& e : h.entries()) {
    keys.push_back(e.key + "=" + e.value);
  }
  EXPECT_EQ(keys,
            (std::vector<std::string>{":path=/", "content-length=3", "x-keep=yes", "te=trailers"}));
  removeHopByHopHeaders(response, /*keep_te_trailers=*/false);
  EXPECT_EQ(response.get("te"), nullptr);
  EXPECT_EQ(response.size(), 3u);
}

}  // namespace
}  // namespace corral::http
