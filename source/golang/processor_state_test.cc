#include "source/golang/processor_state.h"

#include <gtest/gtest.h>

namespace corral::golang {
namespace {

class ProcessorStateTest : public ::testing::Test {
protected:
  httpRequest req_{};
  ProcessorState state_{&req_, false};
};

TEST_F(ProcessorStateTest, HeaderContinueWaitsForDataOrIsDone) {
  state_.processHeader(false);
  EXPECT_TRUE(state_.isProcessingInGo());
  EXPECT_TRUE(state_.handleGolangStatus(GolangStatus::Continue));
  EXPECT_EQ(state_.filterState(), FilterState::WaitingData);
  EXPECT_FALSE(state_.isProcessingInGo());

  ProcessorState headers_only(&req_, false);
  headers_only.processHeader(true);
  EXPECT_TRUE(headers_only.handleGolangStatus(GolangStatus::Continue));
  EXPECT_EQ(headers_only.filterState(), FilterState::Done);
}

TEST_F(ProcessorStateTest, HeaderStopStatuses) {
  state_.processHeader(false);
  EXPECT_FALSE(state_.handleGolangStatus(GolangStatus::StopAndBuffer));
  EXPECT_EQ(state_.filterState(), FilterState::WaitingAllData);

  ProcessorState watermark(&req_, false);
  watermark.processHeader(false);
  EXPECT_FALSE(watermark.handleGolangStatus(GolangStatus::StopAndBufferWatermark));
  EXPECT_EQ(watermark.filterState(), FilterState::WaitingData);

  // Running and LocalReply leave the phase to Go.
  ProcessorState running(&req_, false);
  running.processHeader(false);
  EXPECT_FALSE(running.handleGolangStatus(GolangStatus::Running));
  EXPECT_EQ(running.filterState(), FilterState::ProcessingHeader);
  EXPECT_FALSE(running.handleGolangStatus(GolangStatus::LocalReply));
  EXPECT_EQ(running.filterState(), FilterState::ProcessingHeader);
}

TEST_F(ProcessorStateTest, StopNoBufferDropsTheChunkGoConsumed) {
  http::Buffer a("first"), b("second");
  state_.processData(false);
  http::Buffer& chunk_a = state_.pushDoData(a);
  EXPECT_TRUE(a.empty());  // moved
  EXPECT_FALSE(state_.handleGolangStatus(GolangStatus::StopAndBufferWatermark));
  state_.processData(false);
  http::Buffer& chunk_b = state_.pushDoData(b);
  EXPECT_TRUE(state_.hasDoData(&chunk_a));
  EXPECT_TRUE(state_.hasDoData(&chunk_b));
  EXPECT_FALSE(state_.handleGolangStatus(GolangStatus::StopNoBuffer));
  EXPECT_EQ(state_.filterState(), FilterState::WaitingData);
  EXPECT_FALSE(state_.hasDoData(&chunk_b));  // the latest chunk is gone, the earlier one kept
  http::Buffer out;
  state_.moveOutDoData(out);
  EXPECT_EQ(out.view(), "first");
  EXPECT_TRUE(state_.doDataEmpty());
}

TEST_F(ProcessorStateTest, DataContinueAtEndIsDoneAndTrailersWait) {
  state_.processData(true);
  EXPECT_TRUE(state_.handleGolangStatus(GolangStatus::Continue));
  EXPECT_EQ(state_.filterState(), FilterState::Done);

  http::HeaderMap trailers;
  ProcessorState with_trailers(&req_, false);
  with_trailers.trailers = &trailers;
  with_trailers.processData(false);
  EXPECT_TRUE(with_trailers.handleGolangStatus(GolangStatus::Continue));
  EXPECT_EQ(with_trailers.filterState(), FilterState::WaitingTrailer);
  with_trailers.processTrailer();
  EXPECT_TRUE(with_trailers.isProcessingEndStream());
  EXPECT_TRUE(with_trailers.handleGolangStatus(GolangStatus::Continue));
  EXPECT_EQ(with_trailers.filterState(), FilterState::Done);
}

TEST_F(ProcessorStateTest, UnknownHandleAndBadStatusesAreRefused) {
  http::Buffer a("x");
  state_.processData(false);
  state_.pushDoData(a);
  http::Buffer other;
  EXPECT_FALSE(state_.hasDoData(&other));
  EXPECT_FALSE(state_.hasDoData(nullptr));
  // A trailer phase takes only Continue (or Running/LocalReply).
  state_.processTrailer();
  EXPECT_FALSE(state_.handleGolangStatus(GolangStatus::StopAndBuffer));
  EXPECT_EQ(state_.filterState(), FilterState::ProcessingTrailer);
  // Outside a Go phase, a status changes nothing.
  ProcessorState idle(&req_, false);
  EXPECT_FALSE(idle.handleGolangStatus(GolangStatus::Continue));
  EXPECT_EQ(idle.filterState(), FilterState::WaitingHeader);
}

TEST_F(ProcessorStateTest, LogPhaseCountsAsInGo) {
  EXPECT_FALSE(state_.isProcessingInGo());
  req_.is_golang_processing_log = 1;
  EXPECT_TRUE(state_.isProcessingInGo());
}

}  // namespace
}  // namespace corral::golang
