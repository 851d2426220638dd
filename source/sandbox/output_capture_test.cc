#include "source/sandbox/output_capture.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

namespace corral::sandbox {
namespace {

TEST(OutputCaptureTest, LinesPartialLinesAndTheFailureLine) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  OutputCapture capture(p[0]);
  const std::string first = "starting\npanic: boom\ngoroutine 1 [running]:\npart";
  ASSERT_EQ(::write(p[1], first.data(), first.size()), static_cast<ssize_t>(first.size()));
  auto lines = capture.drain();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "panic: boom");
  EXPECT_EQ(capture.failureLine(), "panic: boom");
  ASSERT_EQ(::write(p[1], "ial\nfatal error: later\n", 23), 23);
  lines = capture.drain();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "partial");
  EXPECT_EQ(capture.failureLine(), "panic: boom");  // the first one stays
  ASSERT_EQ(::write(p[1], "no newline at the end", 21), 21);
  ::close(p[1]);
  lines = capture.drain();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "no newline at the end");
}

TEST(OutputCaptureTest, AnEndlessLineIsCutNotKept) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  OutputCapture capture(p[0]);
  const std::string chunk(1000, 'x');
  size_t total = 0;
  for (int i = 0; i < 20; ++i) {
    total += static_cast<size_t>(::write(p[1], chunk.data(), chunk.size()));
    for (const auto& line : capture.drain()) {
      EXPECT_LE(line.size(), OutputCapture::kMaxLine);
    }
  }
  ::close(p[1]);
  capture.drain();
  EXPECT_EQ(total, 20000u);
}

}  // namespace
}  // namespace corral::sandbox
