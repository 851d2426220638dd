#include "source/server/worker.h"

#include <arpa/inet.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "source/common/assert.h"
#include "source/common/stats.h"

namespace corral::server {

std::string addressToString(const sockaddr* addr) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    ::inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    return fmt::format("{}:{}", ip, ntohs(in->sin_port));
  }
  if (addr->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    return fmt::format("[{}]:{}", ip, ntohs(in6->sin6_port));
  }
  return "unknown";
}

Worker::Worker(size_t index, const upstream::ClusterManager& cm,
               std::vector<ListenerSocket> sockets)
    : index_(index), cm_(cm), sockets_(std::move(sockets)) {}

Worker::~Worker() {
  stop();
}

void Worker::start() {
  thread_ = std::thread([this] { threadRun(); });
}

void Worker::threadRun() {
  stats::setThreadSlot(index_ + 1);
  tlcm_ = std::make_unique<upstream::ThreadLocalClusterManager>(cm_, dispatcher_);
  upstream::ThreadLocalClusterManager::setCurrent(tlcm_.get());
  for (auto& s : sockets_) {
    auto acc = std::make_unique<Accepting>();
    acc->worker = this;
    acc->config = s.config;
    acc->listener = evconnlistener_new(dispatcher_.base(), &Worker::onAccept, acc.get(),
                                       LEV_OPT_CLOSE_ON_FREE, -1, s.fd);
    CORRAL_RELEASE_ASSERT(acc->listener != nullptr, "evconnlistener_new");
    evconnlistener_set_error_cb(acc->listener, &Worker::onAcceptError);
    Accepting* raw = acc.get();
    acc->resume = dispatcher_.createTimer([raw] { evconnlistener_enable(raw->listener); });
    listeners_.push_back(std::move(acc));
  }
  dispatcher_.run();
  // Shutdown: close everything this thread owns, on this thread.
  closeListeners();
  while (!connections_.empty()) {
    // Force-close whatever drain did not finish (closing unlinks the connection).
    connections_.begin()->first->onStreamReset("shutdown");
  }
  dispatcher_.clearDeferredDeleteList();
  upstream::ThreadLocalClusterManager::setCurrent(nullptr);
  tlcm_.reset();
  dispatcher_.clearDeferredDeleteList();
}

void Worker::onAccept(evconnlistener*, int fd, sockaddr* addr, int, void* arg) {
  auto* acc = static_cast<Accepting*>(arg);
  Worker* self = acc->worker;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
  auto conn = std::make_unique<http::ServerConnection>(
      *self, acc->config, fd, addressToString(addr),
      addressToString(reinterpret_cast<sockaddr*>(&local)));
  http::ServerConnection* raw = conn.get();
  self->connections_.emplace(raw, std::move(conn));
  self->connection_count_.fetch_add(1, std::memory_order_relaxed);
}

void Worker::onAcceptError(evconnlistener* listener, void* arg) {
  auto* acc = static_cast<Accepting*>(arg);
  const int err = errno;
  // At most ten lines a second: the pause below rate-limits this log.
  CORRAL_LOG(warn, "accept failed: {}; pausing accepts for 100 ms", std::strerror(err));
  evconnlistener_disable(listener);
  acc->resume->enable(std::chrono::milliseconds(100));
}

void Worker::onConnectionClosed(http::ServerConnection& connection) {
  auto it = connections_.find(&connection);
  if (it != connections_.end()) {
    dispatcher_.deferredDelete(std::move(it->second));
    connections_.erase(it);
    connection_count_.fetch_sub(1, std::memory_order_relaxed);
  }
  checkDrained();
}

void Worker::closeListeners() {
  for (auto& acc : listeners_) {
    evconnlistener_free(acc->listener);
  }
  listeners_.clear();
}

void Worker::drain(std::function<void()> on_empty) {
  dispatcher_.post([this, on_empty = std::move(on_empty)]() mutable {
    draining_ = true;
    on_drained_ = std::move(on_empty);
    closeListeners();
    // Copy: startDrain may close (and unlink) connections.
    std::vector<http::ServerConnection*> conns;
    for (auto& [raw, owned] : connections_) {
      conns.push_back(raw);
    }
    for (auto* c : conns) {
      c->startDrain();
    }
    if (tlcm_) {
      tlcm_->drainIdle();
    }
    checkDrained();
  });
}

void Worker::checkDrained() {
  if (draining_ && connections_.empty() && on_drained_) {
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
  }
}

void Worker::stop() {
  if (thread_.joinable()) {
    dispatcher_.exit();
    thread_.join();
  }
}

}  // namespace corral::server
