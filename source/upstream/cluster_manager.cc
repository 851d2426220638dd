#include "source/upstream/cluster_manager.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>
#include <random>

#include <fmt/format.h>

#include "source/upstream/conn_pool.h"
#include "source/upstream/load_balancer.h"

namespace corral::upstream {

ClusterStats::ClusterStats(stats::Store& s, const std::string& p)
    : upstream_cx_total(s.counter(p + "upstream_cx_total")),
      upstream_cx_active(s.gauge(p + "upstream_cx_active")),
      upstream_cx_connect_fail(s.counter(p + "upstream_cx_connect_fail")),
      upstream_cx_connect_timeout(s.counter(p + "upstream_cx_connect_timeout")),
      upstream_cx_destroy(s.counter(p + "upstream_cx_destroy")),
      upstream_cx_overflow(s.counter(p + "upstream_cx_overflow")),
      upstream_cx_protocol_error(s.counter(p + "upstream_cx_protocol_error")),
      upstream_rq_total(s.counter(p + "upstream_rq_total")),
      upstream_rq_active(s.gauge(p + "upstream_rq_active")),
      upstream_rq_pending_total(s.counter(p + "upstream_rq_pending_total")),
      upstream_rq_pending_active(s.gauge(p + "upstream_rq_pending_active")),
      upstream_rq_pending_overflow(s.counter(p + "upstream_rq_pending_overflow")),
      upstream_rq_timeout(s.counter(p + "upstream_rq_timeout")),
      upstream_rq_rx_reset(s.counter(p + "upstream_rq_rx_reset")),
      upstream_rq_completed(s.counter(p + "upstream_rq_completed")),
      upstream_rq_xx{nullptr,
                     &s.counter(p + "upstream_rq_1xx"),
                     &s.counter(p + "upstream_rq_2xx"),
                     &s.counter(p + "upstream_rq_3xx"),
                     &s.counter(p + "upstream_rq_4xx"),
                     &s.counter(p + "upstream_rq_5xx")} {}

namespace {

// Resolves one endpoint: an IP literal for STATIC, a name for STRICT_DNS (all addresses).
absl::Status resolve(const config::SocketAddress& sa, bool dns,
                     std::vector<HostConstSharedPtr>& out) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = dns ? 0 : AI_NUMERICHOST;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(sa.port);
  const int rc = ::getaddrinfo(sa.address.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        fmt::format("cannot resolve \"{}\": {}", sa.address, gai_strerror(rc)));
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    auto host = std::make_shared<Host>();
    std::memcpy(&host->addr, ai->ai_addr, ai->ai_addrlen);
    host->addr_len = ai->ai_addrlen;
    char ip[INET6_ADDRSTRLEN] = {0};
    if (ai->ai_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, ip, sizeof(ip));
      host->address = fmt::format("{}:{}", ip, sa.port);
    } else {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, ip,
                  sizeof(ip));
      host->address = fmt::format("[{}]:{}", ip, sa.port);
    }
    out.push_back(std::move(host));
    if (!dns) {
      break;
    }
  }
  ::freeaddrinfo(res);
  return absl::OkStatus();
}

thread_local ThreadLocalClusterManager* tls_cm = nullptr;

}  // namespace

absl::StatusOr<std::unique_ptr<ClusterManager>> ClusterManager::create(
    const config::Bootstrap& bootstrap, stats::Store& store) {
  auto cm = std::make_unique<ClusterManager>();
  for (size_t i = 0; i < bootstrap.clusters.size(); ++i) {
    const auto& c = bootstrap.clusters[i];
    std::vector<HostConstSharedPtr> hosts;
    for (size_t j = 0; j < c.endpoints.size(); ++j) {
      auto status = resolve(c.endpoints[j], c.type == config::Cluster::Type::StrictDns, hosts);
      if (!status.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("static_resources.clusters[{}].load_assignment (endpoint {}): {}", i, j,
                        std::string(status.message())));
      }
    }
    cm->clusters_[c.name] = std::make_shared<ClusterInfo>(c, std::move(hosts), store);
  }
  return cm;
}

ThreadLocalCluster::ThreadLocalCluster(ClusterInfoConstSharedPtr info,
                                       event::Dispatcher& dispatcher)
    : info_(std::move(info)) {
  for (const auto& host : info_->hosts()) {
    pools_.push_back(std::make_unique<ConnPool>(*info_, host, dispatcher));
  }
  if (!pools_.empty()) {
    lb_ = LoadBalancer::create(
        info_->config().lb_policy, pools_.size(),
        [this](size_t i) { return pools_[i]->activeRequests(); }, std::random_device{}());
  }
}

ThreadLocalCluster::~ThreadLocalCluster() = default;

ConnPool* ThreadLocalCluster::choosePool() {
  if (pools_.empty()) {
    return nullptr;
  }
  return pools_[lb_->choose()].get();
}

void ThreadLocalCluster::drainIdle() {
  for (auto& p : pools_) {
    p->drainIdle();
  }
}

ThreadLocalClusterManager::ThreadLocalClusterManager(const ClusterManager& cm,
                                                     event::Dispatcher& dispatcher) {
  for (const auto& [name, info] : cm.clusters()) {
    clusters_[name] = std::make_unique<ThreadLocalCluster>(info, dispatcher);
  }
}

ThreadLocalClusterManager::~ThreadLocalClusterManager() = default;

ThreadLocalCluster* ThreadLocalClusterManager::get(const std::string& name) {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

void ThreadLocalClusterManager::drainIdle() {
  for (auto& [name, c] : clusters_) {
    c->drainIdle();
  }
}

ThreadLocalClusterManager* ThreadLocalClusterManager::current() {
  return tls_cm;
}
void ThreadLocalClusterManager::setCurrent(ThreadLocalClusterManager* tlcm) {
  tls_cm = tlcm;
}

}  // namespace corral::upstream
