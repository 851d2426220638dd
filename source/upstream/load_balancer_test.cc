#include "source/upstream/load_balancer.h"

#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace corral::upstream {
namespace {

TEST(LoadBalancerTest, RoundRobinCyclesThroughHosts) {
  auto lb = LoadBalancer::create(config::Cluster::LbPolicy::RoundRobin, 3, nullptr, 0);
  std::vector<size_t> got;
  for (int i = 0; i < 6; ++i) {
    got.push_back(lb->choose());
  }
  EXPECT_EQ(got, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(LoadBalancerTest, RandomStaysInRangeAndSpreads) {
  auto lb = LoadBalancer::create(config::Cluster::LbPolicy::Random, 4, nullptr, 42);
  std::map<size_t, int> counts;
  for (int i = 0; i < 4000; ++i) {
    const size_t c = lb->choose();
    ASSERT_LT(c, 4u);
    ++counts[c];
  }
  for (size_t h = 0; h < 4; ++h) {
    EXPECT_GT(counts[h], 800) << h;  // ~1000 each
  }
}

TEST(LoadBalancerTest, LeastRequestPrefersLessLoaded) {
  std::vector<uint64_t> active = {10, 0, 10};
  auto lb = LoadBalancer::create(
      config::Cluster::LbPolicy::LeastRequest, 3, [&](size_t i) { return active[i]; }, 7);
  std::map<size_t, int> counts;
  for (int i = 0; i < 3000; ++i) {
    ++counts[lb->choose()];
  }
  // Host 1 wins every pairing it is part of: 2/3 of all picks.
  EXPECT_GT(counts[1], 1800);
  EXPECT_LT(counts[0], 700);
}

TEST(LoadBalancerTest, LeastRequestSingleHost) {
  auto lb = LoadBalancer::create(
      config::Cluster::LbPolicy::LeastRequest, 1, [](size_t) { return 5; }, 1);
  EXPECT_EQ(lb->choose(), 0u);
}

}  // namespace
}  // namespace corral::upstream
