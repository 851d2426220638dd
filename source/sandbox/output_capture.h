#pragma once
// What a sandbox process writes to stdout/stderr, read from a pipe by the supervisor: complete
// lines for the log (with the library's name), and the first line of a Go crash ("panic: ...",
// "fatal error: ...") kept as the failure's reason. Bounded: a process that writes a lot costs
// a bounded buffer, never unbounded memory.
//
// Thread-safety: one thread.

#include <string>
#include <vector>

namespace corral::sandbox {

class OutputCapture {
public:
  // Takes ownership of the read end of the pipe (made non-blocking here).
  explicit OutputCapture(int read_fd);
  ~OutputCapture();
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  int fd() const { return fd_; }
  // Reads what is there now; returns the complete lines (a partial line waits for the rest, or
  // is cut at kMaxLine). At EOF the partial line is returned too.
  std::vector<std::string> drain();
  // The first "panic: " / "fatal error: " / "SIGSEGV" line seen, if any.
  const std::string& failureLine() const { return failure_line_; }

  static constexpr size_t kMaxLine = 4096;

private:
  void take(std::string line, std::vector<std::string>& out);

  int fd_;
  std::string partial_;
  std::string failure_line_;
};

}  // namespace corral::sandbox
