#include "source/sandbox/seccomp_policy.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <memory>

#include <fmt/format.h>

namespace corral::sandbox {
namespace {

// Syscalls a sandbox process may make freely. Names unknown on this architecture are skipped.
constexpr const char* kAllowed[] = {
    // memory
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mincore",
    "mlock",
    "munlock",
    "membarrier",
    // threads, signals, scheduling, time
    "futex",
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "rseq",
    "arch_prctl",
    "gettid",
    "getpid",
    "getppid",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigsuspend",
    "sigaltstack",
    "sched_yield",
    "sched_getaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_delete",
    "setitimer",
    "getitimer",
    "exit",
    "exit_group",
    "restart_syscall",
    "getrusage",
    "times",
    "sysinfo",
    "uname",
    "getrandom",
    "prlimit64",
    "getrlimit",
    "prctl",
    "capget",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "getresuid",
    "getresgid",
    "getpgrp",
    "getpgid",
    "getsid",
    "wait4",
    "waitid",
    // files and descriptors (plugins read config files, write logs)
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "lseek",
    "open",
    "openat",
    "openat2",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "ftruncate",
    "fsync",
    "fdatasync",
    "fallocate",
    "flock",
    "fchmod",
    "fchmodat",
    "umask",
    "utimensat",
    "sendfile",
    "copy_file_range",
    "splice",
    "pipe",
    "pipe2",
    "eventfd2",
    "memfd_create",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    // waiting
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    // network egress and local sockets (socket() itself is filtered below)
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "getsockopt",
    "setsockopt",
    "socketpair",
};

// Threads only: every CLONE_NEW* namespace flag must be clear.
constexpr uint64_t kCloneNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                          CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                          CLONE_NEWNET;

struct ContextDeleter {
  void operator()(scmp_filter_ctx* ctx) const { seccomp_release(*ctx); }
};

absl::Status failed(const char* what, int rc) {
  return absl::InternalError(fmt::format("seccomp: {}: {}", what, strerror(-rc)));
}

}  // namespace

absl::Status installSandboxSeccomp() {
  scmp_filter_ctx raw = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (raw == nullptr) {
    return absl::InternalError("seccomp_init failed");
  }
  std::unique_ptr<scmp_filter_ctx, ContextDeleter> ctx(&raw);
  int rc = seccomp_attr_set(raw, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc != 0) {
    return failed("TSYNC", rc);
  }
  for (const char* name : kAllowed) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
      continue;  // not on this architecture
    }
    rc = seccomp_rule_add(raw, SCMP_ACT_ALLOW, nr, 0);
    if (rc != 0) {
      return failed(name, rc);
    }
  }
  // Threads yes, namespaces no.
  rc = seccomp_rule_add(raw, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                        SCMP_A0(SCMP_CMP_MASKED_EQ, kCloneNamespaceFlags, 0));
  if (rc != 0) {
    return failed("clone", rc);
  }
  // Signals to itself only: Go's runtime raises signals on its own threads (preemption) and on
  // its own process (dying of a fatal signal). Other processes, even the other sandboxes of
  // the same uid, are out of reach.
  const auto self = static_cast<scmp_datum_t>(::getpid());
  rc = seccomp_rule_add(raw, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, self));
  if (rc == 0) {
    rc = seccomp_rule_add(raw, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, SCMP_A0(SCMP_CMP_EQ, self));
  }
  if (rc != 0) {
    return failed("kill", rc);
  }
  // clone3 hides its flags in memory a filter cannot read: make callers fall back to clone.
  rc = seccomp_rule_add(raw, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc != 0) {
    return failed("clone3", rc);
  }
  // ioctl: only the harmless requests runtimes use (never TIOCSTI into an inherited terminal).
  for (unsigned long request : {FIONBIO, FIONREAD, FIOCLEX, FIONCLEX, TCGETS, TIOCGWINSZ}) {
    rc = seccomp_rule_add(raw, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                          SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(request)));
    if (rc != 0) {
      return failed("ioctl", rc);
    }
  }
  // Sockets: IPv4, IPv6 and unix; stream or datagram only (no raw, no packet sockets).
  for (int domain : {AF_INET, AF_INET6, AF_UNIX}) {
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      rc = seccomp_rule_add(raw, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                            SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(domain)),
                            SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, static_cast<scmp_datum_t>(type)));
      if (rc != 0) {
        return failed("socket", rc);
      }
    }
  }
  rc = seccomp_load(raw);
  if (rc != 0) {
    return failed("load", rc);
  }
  return absl::OkStatus();
}

}  // namespace corral::sandbox
