#include "source/sandbox/seccomp_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/ioctl.h>
#include <termios.h>

#include <gtest/gtest.h>

namespace corral::sandbox {
namespace {

// Runs `body` in a child with the policy installed; the child's exit code is the number of the
// first expectation that failed (0: all held).
int inSandbox(int (*body)()) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!installSandboxSeccomp().ok()) {
      ::_exit(100);
    }
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

bool deniedEperm(long rc) {
  return rc == -1 && errno == EPERM;
}

TEST(SeccompPolicyTest, DangerousSyscallsAreRefused) {
  EXPECT_EQ(inSandbox([]() -> int {
              char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
              if (!deniedEperm(::execve("/bin/true", argv, nullptr)))
                return 1;
              if (!deniedEperm(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)))
                return 2;
              if (!deniedEperm(::mount("none", "/tmp", "tmpfs", 0, nullptr)))
                return 3;
              if (!deniedEperm(::unshare(CLONE_NEWUSER)))
                return 4;
              if (!deniedEperm(::socket(AF_PACKET, SOCK_RAW, 0)))
                return 5;
              if (!deniedEperm(::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)))
                return 6;
              if (!deniedEperm(::ioctl(0, TIOCSTI, "x")))
                return 7;
              return 0;
            }),
            0);
}

TEST(SeccompPolicyTest, OrdinaryWorkStillWorks) {
  EXPECT_EQ(inSandbox([]() -> int {
              const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
              if (tcp < 0)
                return 1;
              ::close(tcp);
              const int udp6 = ::socket(AF_INET6, SOCK_DGRAM, 0);
              if (udp6 < 0)
                return 2;
              ::close(udp6);
              const int f = ::open("/proc/self/status", O_RDONLY);
              if (f < 0)
                return 3;
              char buf[64];
              if (::read(f, buf, sizeof(buf)) <= 0)
                return 4;
              ::close(f);
              int fds[2];
              if (::pipe2(fds, O_CLOEXEC) != 0)
                return 5;
              return 0;
            }),
            0);
}

// Signals: to itself (Go dies of a fatal signal by raising it), never to another process.
TEST(SeccompPolicyTest, SignalsReachOnlyTheProcessItself) {
  const pid_t bystander = ::fork();
  if (bystander == 0) {
    ::pause();
    ::_exit(0);
  }
  static pid_t target;
  target = bystander;
  EXPECT_EQ(inSandbox([]() -> int {
              if (!deniedEperm(::kill(target, SIGKILL)))
                return 1;
              if (!deniedEperm(::kill(-1, SIGKILL)))
                return 2;
              if (::kill(::getpid(), 0) != 0)
                return 3;
              ::signal(SIGUSR1, SIG_IGN);
              if (::kill(::getpid(), SIGUSR1) != 0)
                return 4;
              return 0;
            }),
            0);
  EXPECT_EQ(::waitpid(bystander, nullptr, WNOHANG), 0);  // still alive
  ::kill(bystander, SIGKILL);
  ::waitpid(bystander, nullptr, 0);
}

}  // namespace
}  // namespace corral::sandbox
