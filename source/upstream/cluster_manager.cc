#include "source/upstream/cluster_manager.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
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

HostConstSharedPtr makeHost(const sockaddr* addr, socklen_t len, uint32_t port) {
  auto host = std::make_shared<Host>();
  std::memcpy(&host->addr, addr, len);
  host->addr_len = len;
  char ip[INET6_ADDRSTRLEN] = {0};
  if (addr->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, ip, sizeof(ip));
    host->address = fmt::format("{}:{}", ip, port);
  } else {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, ip, sizeof(ip));
    host->address = fmt::format("[{}]:{}", ip, port);
  }
  return host;
}

// Resolves one endpoint: an IP literal for STATIC; for STRICT_DNS every address of the family
// Envoy's dns_lookup_family picks (AUTO: IPv6 if there is any, else IPv4; V4_PREFERRED: the other
// way round; ALL: both).
absl::Status resolve(const config::SocketAddress& sa, const config::Cluster& cluster,
                     std::vector<HostConstSharedPtr>& out) {
  using Family = config::Cluster::DnsLookupFamily;
  const bool dns = cluster.type == config::Cluster::Type::StrictDns;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = dns ? 0 : AI_NUMERICHOST;
  if (dns && cluster.dns_lookup_family == Family::V4Only) {
    hints.ai_family = AF_INET;
  } else if (dns && cluster.dns_lookup_family == Family::V6Only) {
    hints.ai_family = AF_INET6;
  }
  addrinfo* res = nullptr;
  const std::string port = std::to_string(sa.port);
  const int rc = ::getaddrinfo(sa.address.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        fmt::format("cannot resolve \"{}\": {}", sa.address, gai_strerror(rc)));
  }
  std::vector<HostConstSharedPtr> v4, v6;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    auto& list = ai->ai_family == AF_INET6 ? v6 : v4;
    auto host = makeHost(ai->ai_addr, ai->ai_addrlen, sa.port);
    const bool seen = std::any_of(list.begin(), list.end(), [&](const HostConstSharedPtr& h) {
      return h->address == host->address;
    });
    if (!seen) {
      list.push_back(std::move(host));
    }
  }
  ::freeaddrinfo(res);
  std::vector<HostConstSharedPtr>* first = &v4;
  std::vector<HostConstSharedPtr>* second = nullptr;
  switch (dns ? cluster.dns_lookup_family : Family::All) {
  case Family::Auto:
    first = v6.empty() ? &v4 : &v6;
    break;
  case Family::V4Preferred:
    first = v4.empty() ? &v6 : &v4;
    break;
  case Family::V4Only:
    first = &v4;
    break;
  case Family::V6Only:
    first = &v6;
    break;
  case Family::All:
    second = &v6;
    break;
  }
  if (!dns) {
    // An IP literal: exactly one address.
    out.push_back(!v4.empty() ? v4.front() : v6.front());
    return absl::OkStatus();
  }
  out.insert(out.end(), first->begin(), first->end());
  if (second != nullptr) {
    out.insert(out.end(), second->begin(), second->end());
  }
  if (first->empty() && (second == nullptr || second->empty())) {
    return absl::InvalidArgumentError(
        fmt::format("\"{}\" has no address of the requested dns_lookup_family", sa.address));
  }
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
      auto status = resolve(c.endpoints[j], c, hosts);
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

ConnPool* ThreadLocalCluster::poolForAddress(std::string_view address) {
  for (auto& p : pools_) {
    if (p->host().address == address) {
      return p.get();
    }
  }
  return nullptr;
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
