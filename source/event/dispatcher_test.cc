#include "source/event/dispatcher.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

namespace corral::event {
namespace {

TEST(DispatcherTest, PostFromOtherThreadsRunsOnLoopThread) {
  Dispatcher d;
  std::thread::id loop_id;
  std::atomic<int> ran{0};
  std::thread loop([&] {
    loop_id = std::this_thread::get_id();
    d.run();
  });
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        d.post([&] {
          EXPECT_EQ(std::this_thread::get_id(), loop_id);
          ran.fetch_add(1);
        });
      }
    });
  }
  for (auto& p : posters) {
    p.join();
  }
  d.exit();
  loop.join();
  EXPECT_EQ(ran.load(), 1000);
}

TEST(DispatcherTest, TimerFiresAndCanBeDisabled) {
  Dispatcher d;
  int fired = 0;
  auto t1 = d.createTimer([&] {
    ++fired;
    d.exit();
  });
  auto t2 = d.createTimer([&] { fired += 100; });
  t2->enable(std::chrono::milliseconds(5));
  t2->disable();
  EXPECT_FALSE(t2->enabled());
  t1->enable(std::chrono::milliseconds(10));
  EXPECT_TRUE(t1->enabled());
  d.run();
  EXPECT_EQ(fired, 1);
}

}  // namespace
}  // namespace corral::event
