#include "source/sandbox/output_capture.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace corral::sandbox {

OutputCapture::OutputCapture(int read_fd) : fd_(read_fd) {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

OutputCapture::~OutputCapture() {
  ::close(fd_);
}

void OutputCapture::take(std::string line, std::vector<std::string>& out) {
  if (failure_line_.empty() &&
      (line.rfind("panic: ", 0) == 0 || line.rfind("fatal error: ", 0) == 0 ||
       line.rfind("SIGSEGV", 0) == 0 || line.rfind("SIGABRT", 0) == 0 ||
       line.rfind("runtime/cgo: ", 0) == 0 ||      // e.g. no memory for a thread's stack
       line.rfind("terminate called", 0) == 0)) {  // the C++ side's (std::bad_alloc)
    failure_line_ = line;
  }
  out.push_back(std::move(line));
}

std::vector<std::string> OutputCapture::drain() {
  std::vector<std::string> lines;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      if (n == 0 && !partial_.empty()) {  // EOF: the last line without its newline
        take(std::move(partial_), lines);
        partial_.clear();
      }
      return lines;
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        take(std::move(partial_), lines);
        partial_.clear();
      } else if (partial_.size() < kMaxLine) {
        partial_.push_back(buf[i]);
      } else {
        take(std::move(partial_), lines);  // an endless line is cut, not kept
        partial_.assign(1, buf[i]);
      }
    }
  }
}

}  // namespace corral::sandbox
