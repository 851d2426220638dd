#pragma once
// Per-worker load balancers over a cluster's hosts: ROUND_ROBIN, RANDOM and LEAST_REQUEST
// (Envoy's default: power of two choices on active requests). Worker thread only.

#include <cstdint>
#include <functional>
#include <memory>
#include <random>

#include "source/config/bootstrap.h"

namespace corral::upstream {

class LoadBalancer {
public:
  virtual ~LoadBalancer() = default;
  // Returns an index in [0, host_count); host_count > 0.
  virtual size_t choose() = 0;

  // `active_requests(i)` reports host i's active requests on this worker.
  static std::unique_ptr<LoadBalancer> create(config::Cluster::LbPolicy policy, size_t host_count,
                                              std::function<uint64_t(size_t)> active_requests,
                                              uint64_t seed);
};

}  // namespace corral::upstream
