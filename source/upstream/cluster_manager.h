#pragma once
// Clusters: their resolved hosts, stats and circuit breakers (ClusterInfo, shared by all
// workers), and per-worker state — load balancer and one connection pool per host
// (ThreadLocalCluster). The ClusterManager is built on the main thread; each worker builds its
// own ThreadLocalClusterManager from it and registers it as the thread's current one.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/stats.h"
#include "source/config/bootstrap.h"
#include "source/event/dispatcher.h"
#include "source/upstream/host.h"

namespace corral::upstream {

struct ClusterStats {
  ClusterStats(stats::Store& store, const std::string& prefix);
  stats::Counter& upstream_cx_total;
  stats::Gauge& upstream_cx_active;
  stats::Counter& upstream_cx_connect_fail;
  stats::Counter& upstream_cx_connect_timeout;
  stats::Counter& upstream_cx_destroy;
  stats::Counter& upstream_cx_overflow;
  stats::Counter& upstream_cx_protocol_error;
  stats::Counter& upstream_rq_total;
  stats::Gauge& upstream_rq_active;
  stats::Counter& upstream_rq_pending_total;
  stats::Gauge& upstream_rq_pending_active;
  stats::Counter& upstream_rq_pending_overflow;
  stats::Counter& upstream_rq_timeout;
  stats::Counter& upstream_rq_rx_reset;
  stats::Counter& upstream_rq_completed;
  stats::Counter* upstream_rq_xx[6];
};

// Cluster-wide resource counts for circuit breaking; atomics because workers share them.
class ResourceLimit {
public:
  explicit ResourceLimit(uint64_t max) : max_(max) {}
  // Takes one unit if under the limit.
  bool tryAcquire() {
    uint64_t cur = count_.load(std::memory_order_relaxed);
    while (cur < max_) {
      if (count_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  void release() { count_.fetch_sub(1, std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_; }

private:
  std::atomic<uint64_t> count_{0};
  const uint64_t max_;
};

class ClusterInfo {
public:
  ClusterInfo(const config::Cluster& config, std::vector<HostConstSharedPtr> hosts,
              stats::Store& store)
      : config_(config),
        hosts_(std::move(hosts)),
        stats_(store, "cluster." + config.name + "."),
        connections_(config.circuit_breakers.max_connections),
        pending_(config.circuit_breakers.max_pending_requests),
        requests_(config.circuit_breakers.max_requests) {}

  const std::string& name() const { return config_.name; }
  const config::Cluster& config() const { return config_; }
  const std::vector<HostConstSharedPtr>& hosts() const { return hosts_; }
  ClusterStats& stats() const { return stats_; }
  ResourceLimit& connections() const { return connections_; }
  ResourceLimit& pendingRequests() const { return pending_; }
  ResourceLimit& requests() const { return requests_; }

private:
  const config::Cluster& config_;
  std::vector<HostConstSharedPtr> hosts_;
  mutable ClusterStats stats_;
  mutable ResourceLimit connections_;
  mutable ResourceLimit pending_;
  mutable ResourceLimit requests_;
};
using ClusterInfoConstSharedPtr = std::shared_ptr<const ClusterInfo>;

class ClusterManager {
public:
  // Resolves STRICT_DNS hosts (blocking, at start-up). Errors name the cluster's YAML path.
  static absl::StatusOr<std::unique_ptr<ClusterManager>> create(const config::Bootstrap& bootstrap,
                                                                stats::Store& store);
  const std::map<std::string, ClusterInfoConstSharedPtr>& clusters() const { return clusters_; }

private:
  std::map<std::string, ClusterInfoConstSharedPtr> clusters_;
};

class ConnPool;
class LoadBalancer;

class ThreadLocalCluster {
public:
  ThreadLocalCluster(ClusterInfoConstSharedPtr info, event::Dispatcher& dispatcher);
  ~ThreadLocalCluster();
  const ClusterInfo& info() const { return *info_; }
  // Picks a host with the load balancer; nullptr if the cluster has none.
  ConnPool* choosePool();
  // The pool of the host with this "ip:port" address, or nullptr if the cluster has none.
  ConnPool* poolForAddress(std::string_view address);
  // Closes idle upstream connections (drain).
  void drainIdle();

private:
  ClusterInfoConstSharedPtr info_;
  std::vector<std::unique_ptr<ConnPool>> pools_;  // one per host, same order as info_->hosts()
  std::unique_ptr<LoadBalancer> lb_;
};

class ThreadLocalClusterManager {
public:
  ThreadLocalClusterManager(const ClusterManager& cm, event::Dispatcher& dispatcher);
  ~ThreadLocalClusterManager();
  ThreadLocalCluster* get(const std::string& name);
  void drainIdle();

  // The current worker thread's instance (set by the worker at start).
  static ThreadLocalClusterManager* current();
  static void setCurrent(ThreadLocalClusterManager* tlcm);

private:
  std::map<std::string, std::unique_ptr<ThreadLocalCluster>> clusters_;
};

}  // namespace corral::upstream
