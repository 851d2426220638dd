#include "source/golang/processor_state.h"

#include "source/common/logger.h"

namespace corral::golang {

bool ProcessorState::handleHeaderStatus(GolangStatus status) {
  switch (status) {
  case GolangStatus::LocalReply:
  case GolangStatus::Running:
    return false;
  case GolangStatus::Continue:
    setFilterState(do_end_stream_ ? FilterState::Done : FilterState::WaitingData);
    return true;
  case GolangStatus::StopAndBuffer:
    setFilterState(FilterState::WaitingAllData);
    return false;
  case GolangStatus::StopAndBufferWatermark:
    setFilterState(FilterState::WaitingData);
    return false;
  default:
    CORRAL_LOG(err, "golang filter: unexpected status {} for headers", static_cast<int>(status));
    return false;
  }
}

bool ProcessorState::handleDataStatus(GolangStatus status) {
  bool done = false;
  switch (status) {
  case GolangStatus::LocalReply:
  case GolangStatus::Running:
    return false;
  case GolangStatus::Continue:
    setFilterState(do_end_stream_ ? FilterState::Done : FilterState::WaitingData);
    done = true;
    break;
  case GolangStatus::StopAndBuffer:
    setFilterState(FilterState::WaitingAllData);
    break;
  case GolangStatus::StopAndBufferWatermark:
    setFilterState(FilterState::WaitingData);
    break;
  case GolangStatus::StopNoBuffer:
    if (!do_data_.empty()) {
      do_data_.pop_back();  // Go consumed the chunk
    }
    setFilterState(FilterState::WaitingData);
    break;
  default:
    CORRAL_LOG(err, "golang filter: unexpected status {} for data", static_cast<int>(status));
    return false;
  }
  if (trailers != nullptr && isBufferDataEmpty()) {
    setFilterState(FilterState::WaitingTrailer);
  }
  return done;
}

bool ProcessorState::handleTrailerStatus(GolangStatus status) {
  if (status == GolangStatus::Continue) {
    setFilterState(FilterState::Done);
    return true;
  }
  if (status != GolangStatus::LocalReply && status != GolangStatus::Running) {
    CORRAL_LOG(err, "golang filter: unexpected status {} for trailers", static_cast<int>(status));
  }
  return false;
}

bool ProcessorState::handleGolangStatus(GolangStatus status) {
  switch (filterState()) {
  case FilterState::ProcessingHeader:
    return handleHeaderStatus(status);
  case FilterState::ProcessingData:
    return handleDataStatus(status);
  case FilterState::ProcessingTrailer:
    return handleTrailerStatus(status);
  default:
    return false;
  }
}

http::Buffer& ProcessorState::pushDoData(http::Buffer& data) {
  auto chunk = std::make_unique<http::Buffer>();
  chunk->move(data);
  do_data_.push_back(std::move(chunk));
  return *do_data_.back();
}

bool ProcessorState::hasDoData(const http::Buffer* handle) const {
  for (const auto& b : do_data_) {
    if (b.get() == handle) {
      return true;
    }
  }
  return false;
}

void ProcessorState::moveOutDoData(http::Buffer& out) {
  for (auto& b : do_data_) {
    out.move(*b);
  }
  do_data_.clear();
}

}  // namespace corral::golang
