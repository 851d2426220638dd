#pragma once
// Starting and stopping sandbox processes: the OS seam of the supervisor (LevelDB's Env idea).
// The supervisor only talks to a Launcher, so its failure paths (crash on start, refusal to die,
// fork failure) are unit-tested with a fake; PosixLauncher is the real one.
//
// What a real sandbox process gets (DESIGN.md §5): a clean environment (only what the spec
// lists), its own process group, SIGKILL when the parent dies, no file descriptors but the
// channel's (as fds 3, 4, 5: memfd, to-sandbox eventfd, to-proxy eventfd) and the extra ones the
// spec lists (from fd 6 on), a data-segment limit
// (RLIMIT_DATA: never RLIMIT_AS, the Go runtime reserves address space), and an unprivileged uid
// when the proxy runs as root. Death is observed through a pidfd, which an event loop can watch.
//
// Thread-safety: a Launcher is used from the main thread.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace corral::sandbox {

struct SpawnSpec {
  std::string path;                   // executable
  std::vector<std::string> args;      // argv[1..]
  std::vector<std::string> env;       // "K=V" entries: the whole environment
  int channel_fds[3] = {-1, -1, -1};  // become fds 3, 4, 5 in the child
  std::vector<int> extra_fds;         // become fds 6, 7, ... (e.g. the plugin library, opened
                                      // here so the unprivileged child need not reach its path)
  std::optional<uint64_t> data_limit_bytes;
  std::optional<uid_t> run_as;  // uid and gid to switch to (when we may)
  int output_fd = -1;           // becomes stdout and stderr (the Go crash output goes there)
};

struct Spawned {
  pid_t pid = -1;
  int pidfd = -1;  // readable once the process has exited; owned by the caller
};

// How a process ended, from waitid().
struct ExitInfo {
  bool signaled = false;
  int code = 0;  // exit status, or the signal number
};

class Launcher {
public:
  virtual ~Launcher() = default;
  virtual absl::StatusOr<Spawned> spawn(const SpawnSpec& spec) = 0;
  virtual void kill(pid_t pid, int signal) = 0;
  // Reaps an exited process (call when its pidfd is readable). nullopt if it has not exited.
  virtual std::optional<ExitInfo> reap(pid_t pid) = 0;
};

// pidfd_open(2) (Debian 12's <sys/pidfd.h> lacks C linkage for C++, so through syscall()).
int openPidfd(pid_t pid);

class PosixLauncher : public Launcher {
public:
  absl::StatusOr<Spawned> spawn(const SpawnSpec& spec) override;
  void kill(pid_t pid, int signal) override;
  std::optional<ExitInfo> reap(pid_t pid) override;
};

}  // namespace corral::sandbox
