#include "source/upstream/load_balancer.h"

namespace corral::upstream {
namespace {

class RoundRobin : public LoadBalancer {
public:
  RoundRobin(size_t n, uint64_t seed) : n_(n), next_(seed % n) {}
  size_t choose() override {
    const size_t i = next_;
    next_ = (next_ + 1) % n_;
    return i;
  }

private:
  size_t n_;
  size_t next_;
};

class Random : public LoadBalancer {
public:
  Random(size_t n, uint64_t seed) : n_(n), rng_(seed) {}
  size_t choose() override { return static_cast<size_t>(rng_() % n_); }

private:
  size_t n_;
  std::mt19937_64 rng_;
};

class LeastRequest : public LoadBalancer {
public:
  LeastRequest(size_t n, std::function<uint64_t(size_t)> active, uint64_t seed)
      : n_(n), active_(std::move(active)), rng_(seed) {}
  size_t choose() override {
    if (n_ == 1) {
      return 0;
    }
    // Two distinct random candidates; the one with fewer active requests wins (ties: first).
    const size_t a = static_cast<size_t>(rng_() % n_);
    size_t b = static_cast<size_t>(rng_() % (n_ - 1));
    if (b >= a) {
      ++b;
    }
    return active_(b) < active_(a) ? b : a;
  }

private:
  size_t n_;
  std::function<uint64_t(size_t)> active_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<LoadBalancer> LoadBalancer::create(config::Cluster::LbPolicy policy,
                                                   size_t host_count,
                                                   std::function<uint64_t(size_t)> active_requests,
                                                   uint64_t seed) {
  switch (policy) {
  case config::Cluster::LbPolicy::Random:
    return std::make_unique<Random>(host_count, seed);
  case config::Cluster::LbPolicy::LeastRequest:
    return std::make_unique<LeastRequest>(host_count, std::move(active_requests), seed);
  case config::Cluster::LbPolicy::RoundRobin:
  default:
    return std::make_unique<RoundRobin>(host_count, seed);
  }
}

}  // namespace corral::upstream
