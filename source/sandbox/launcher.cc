#include "source/sandbox/launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace corral::sandbox {
namespace {

// In the child between fork and exec: async-signal-safe calls only. On failure the errno goes
// to the parent through `report` (close-on-exec: EOF there means exec worked).
[[noreturn]] void childFail(int report, int stage) {
  const int err[2] = {stage, errno};
  [[maybe_unused]] ssize_t n = ::write(report, err, sizeof(err));
  ::_exit(127);
}

[[noreturn]] void runChild(const SpawnSpec& spec, pid_t parent, char* const* argv,
                           char* const* envp, int report) {
  // Keep the report pipe clear of fds 3-5, which the channel takes.
  const int moved = ::fcntl(report, F_DUPFD_CLOEXEC, 200);
  if (moved >= 0) {
    ::close(report);
    report = moved;
  }
  ::setpgid(0, 0);
  // The channel's fds to 3, 4, 5 and the extra ones to 6, 7, ...: first above all of them so
  // no dup2 clobbers a source, then into place.
  const size_t n = 3 + spec.extra_fds.size();
  int high[16];
  if (n > 16) {
    childFail(report, 2);
  }
  for (size_t i = 0; i < n; ++i) {
    const int src = i < 3 ? spec.channel_fds[i] : spec.extra_fds[i - 3];
    high[i] = ::fcntl(src, F_DUPFD_CLOEXEC, 100);
    if (high[i] < 0) {
      childFail(report, 2);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (::dup2(high[i], 3 + static_cast<int>(i)) < 0) {  // the copy is not close-on-exec
      childFail(report, 2);
    }
  }
  if (spec.output_fd >= 0) {
    if (::dup2(spec.output_fd, 1) < 0 || ::dup2(spec.output_fd, 2) < 0) {
      childFail(report, 2);
    }
  }
  // Everything else goes, except the report pipe (close-on-exec) and stdio.
  const int keep = report;
  for (int fd = 3 + static_cast<int>(n); fd < keep; ++fd) {
    ::close(fd);
  }
  if (::close_range(static_cast<unsigned>(keep) + 1, ~0U, 0) != 0) {
    childFail(report, 3);
  }
  if (spec.data_limit_bytes) {
    const rlimit lim{*spec.data_limit_bytes, *spec.data_limit_bytes};
    if (::setrlimit(RLIMIT_DATA, &lim) != 0) {
      childFail(report, 4);
    }
  }
  if (spec.run_as && ::geteuid() == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(*spec.run_as) != 0 ||
        ::setuid(*spec.run_as) != 0) {
      childFail(report, 5);
    }
  }
  // After the uid change, which clears it (prctl(2)).
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    childFail(report, 1);
  }
  if (::getppid() != parent) {
    ::_exit(127);  // the parent is already gone
  }
  ::execve(spec.path.c_str(), argv, envp);
  childFail(report, 6);
}

const char* stageName(int stage) {
  switch (stage) {
  case 1:
    return "parent-death signal";
  case 2:
    return "channel fds";
  case 3:
    return "closing fds";
  case 4:
    return "RLIMIT_DATA";
  case 5:
    return "dropping privileges";
  default:
    return "execve";
  }
}

}  // namespace

int openPidfd(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

absl::StatusOr<Spawned> PosixLauncher::spawn(const SpawnSpec& spec) {
  // Everything the child needs is built before fork: after it, no allocation.
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(spec.path.c_str()));
  for (const auto& a : spec.args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    return absl::InternalError(fmt::format("pipe2: {}", std::strerror(errno)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(report[0]);
    ::close(report[1]);
    return absl::ResourceExhaustedError(fmt::format("fork: {}", std::strerror(err)));
  }
  if (pid == 0) {
    ::close(report[0]);
    runChild(spec, parent, argv.data(), envp.data(), report[1]);
  }
  ::close(report[1]);
  int err[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(report[0], err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof(err))) {
    int status;
    ::waitpid(pid, &status, 0);  // it exits at once: reap it
    return absl::InternalError(
        fmt::format("starting {}: {}: {}", spec.path, stageName(err[0]), std::strerror(err[1])));
  }
  const int pidfd = openPidfd(pid);
  if (pidfd < 0) {
    const int e = errno;
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
    return absl::InternalError(fmt::format("pidfd_open: {}", std::strerror(e)));
  }
  return Spawned{pid, pidfd};
}

void PosixLauncher::kill(pid_t pid, int signal) {
  ::kill(pid, signal);
}

std::optional<ExitInfo> PosixLauncher::reap(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG) != 0 ||
      info.si_pid != pid) {
    return std::nullopt;
  }
  ExitInfo out;
  out.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  out.code = info.si_status;
  return out;
}

}  // namespace corral::sandbox
