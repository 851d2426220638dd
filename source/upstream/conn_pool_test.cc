// Connection pool against real loopback sockets: keep-alive reuse, connect failure,
// circuit breakers.

#include "source/upstream/conn_pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <event2/event.h>

#include <gtest/gtest.h>

#include "source/config/bootstrap_loader.h"

namespace corral::upstream {
namespace {

// A listening socket whose accepted connections answer every request with a fixed response.
class TinyUpstream {
public:
  TinyUpstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~TinyUpstream() { ::close(fd_); }
  uint16_t port = 0;
  int fd() const { return fd_; }

private:
  int fd_;
};

std::shared_ptr<Host> hostFor(uint16_t port) {
  auto h = std::make_shared<Host>();
  auto* a = reinterpret_cast<sockaddr_in*>(&h->addr);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a->sin_port = htons(port);
  h->addr_len = sizeof(sockaddr_in);
  h->address = "127.0.0.1:" + std::to_string(port);
  return h;
}

struct Waiter : public PoolCallbacks, public ResponseDecoder {
  void onPoolReady(ClientConnection& c) override {
    conn = &c;
    ready = true;
  }
  void onPoolFailure(PoolFailure r) override {
    failure = r;
    failed = true;
  }
  void onUpstreamHeaders(http::HeaderMapPtr h, bool end) override {
    status = std::string(h->getView(":status"));
    done = end;
  }
  void onUpstreamData(std::string_view d, bool end) override {
    body += d;
    done = end;
  }
  void onUpstreamTrailers(http::HeaderMapPtr) override { done = true; }
  void onUpstreamReset(std::string_view) override { reset = true; }

  ClientConnection* conn = nullptr;
  bool ready = false;
  bool failed = false;
  bool done = false;
  bool reset = false;
  PoolFailure failure = PoolFailure::Overflow;
  std::string status;
  std::string body;
};

class ConnPoolTest : public ::testing::Test {
protected:
  void makeCluster(uint32_t max_conn, uint32_t max_pending, uint32_t max_rq) {
    cluster_config_.name = "c";
    cluster_config_.connect_timeout = std::chrono::milliseconds(1000);
    cluster_config_.circuit_breakers = {max_conn, max_pending, max_rq};
    info_ =
        std::make_unique<ClusterInfo>(cluster_config_, std::vector<HostConstSharedPtr>{}, store_);
  }
  // Runs the loop until `cond` or 5 s.
  template <class F>
  bool runUntil(F cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!cond() && std::chrono::steady_clock::now() < deadline) {
      event_base_loop(dispatcher_.base(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
      usleep(1000);
    }
    return cond();
  }
  static http::HeaderMap get() {
    http::HeaderMap h;
    h.add(":method", "GET");
    h.add(":path", "/");
    h.add(":authority", "x");
    return h;
  }

  event::Dispatcher dispatcher_;
  stats::Store store_;
  config::Cluster cluster_config_;
  std::unique_ptr<ClusterInfo> info_;
};

TEST_F(ConnPoolTest, ReusesKeepAliveConnection) {
  TinyUpstream up;
  makeCluster(10, 10, 10);
  ConnPool pool(*info_, hostFor(up.port), dispatcher_);
  Waiter w1;
  EXPECT_NE(pool.newStream(w1), nullptr);  // waits for a connection
  int peer = -1;
  ASSERT_TRUE(runUntil([&] {
    if (peer < 0) {
      peer = ::accept4(up.fd(), nullptr, nullptr, SOCK_NONBLOCK);
    }
    return w1.ready;
  }));
  w1.conn->setResponseDecoder(&w1);
  w1.conn->encodeHeaders(get(), true);
  char buf[1024];
  std::string request;
  ASSERT_TRUE(runUntil([&] {
    const ssize_t n = ::recv(peer, buf, sizeof(buf), 0);
    if (n > 0) {
      request.append(buf, static_cast<size_t>(n));
    }
    return request.find("\r\n\r\n") != std::string::npos;
  }));
  EXPECT_EQ(request.rfind("GET / HTTP/1.1\r\nhost: x\r\n", 0), 0u);
  const char* resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ASSERT_EQ(::send(peer, resp, std::strlen(resp), 0), static_cast<ssize_t>(std::strlen(resp)));
  ASSERT_TRUE(runUntil([&] { return w1.done; }));
  EXPECT_EQ(w1.status, "200");
  EXPECT_EQ(w1.body, "ok");
  ClientConnection* first = w1.conn;
  first->release();
  EXPECT_EQ(pool.activeRequests(), 0u);

  Waiter w2;
  EXPECT_EQ(pool.newStream(w2), nullptr);  // an idle connection: ready at once
  EXPECT_TRUE(w2.ready);
  EXPECT_EQ(w2.conn, first);
  EXPECT_EQ(info_->stats().upstream_cx_total.value(), 1u);
  EXPECT_EQ(info_->stats().upstream_rq_total.value(), 2u);
  w2.conn->reset();
  EXPECT_EQ(info_->stats().upstream_rq_active.value(), 0);
  EXPECT_EQ(info_->connections().count(), 0u);
  ::close(peer);
}

TEST_F(ConnPoolTest, ConnectFailureFailsPendingRequest) {
  uint16_t dead_port;
  {
    TinyUpstream gone;
    dead_port = gone.port;
  }
  makeCluster(10, 10, 10);
  ConnPool pool(*info_, hostFor(dead_port), dispatcher_);
  Waiter w;
  pool.newStream(w);
  ASSERT_TRUE(runUntil([&] { return w.failed; }));
  EXPECT_EQ(w.failure, PoolFailure::ConnectFailure);
  EXPECT_EQ(info_->stats().upstream_cx_connect_fail.value(), 1u);
  EXPECT_EQ(info_->pendingRequests().count(), 0u);
  EXPECT_EQ(info_->requests().count(), 0u);
}

TEST_F(ConnPoolTest, PendingOverflow) {
  TinyUpstream up;
  makeCluster(1, 1, 10);
  ConnPool pool(*info_, hostFor(up.port), dispatcher_);
  Waiter w1, w2;
  PendingHandle* h = pool.newStream(w1);  // pending while connecting
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(pool.newStream(w2), nullptr);  // max_pending_requests 1: overflow at once
  EXPECT_TRUE(w2.failed);
  EXPECT_EQ(w2.failure, PoolFailure::Overflow);
  EXPECT_EQ(info_->stats().upstream_rq_pending_overflow.value(), 1u);
  h->cancel();  // gives back its pending and request slots
  EXPECT_EQ(info_->pendingRequests().count(), 0u);
  EXPECT_EQ(info_->requests().count(), 0u);
  EXPECT_FALSE(w1.ready || w1.failed);
}

TEST_F(ConnPoolTest, MaxRequestsOverflow) {
  TinyUpstream up;
  makeCluster(10, 10, 1);
  ConnPool pool(*info_, hostFor(up.port), dispatcher_);
  Waiter w1, w2;
  PendingHandle* h = pool.newStream(w1);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(pool.newStream(w2), nullptr);  // max_requests 1
  EXPECT_TRUE(w2.failed);
  EXPECT_EQ(w2.failure, PoolFailure::Overflow);
  h->cancel();
  EXPECT_EQ(info_->requests().count(), 0u);
}

}  // namespace
}  // namespace corral::upstream
