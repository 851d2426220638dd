#pragma once
// Runs the sandbox pools of plugin libraries on an event loop (the main thread's): spawns each
// process with a fresh channel and an output pipe, learns of its death at once (pidfd), logs its
// output with the library's name (keeping the first crash line as the reason), restarts it per
// the pool's backoff and circuit breaker, and pings every ready process each heartbeat interval
// — one that has not answered for three intervals is SIGKILLed (and so restarted).
//
// It also sends each process its Setup first, and tells its owner (SandboxManager through
// LibraryOptions' callbacks) when a process is ready, sent stats, or is gone.
//
// Thread-safety: the loop's thread only.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "source/event/dispatcher.h"
#include "source/sandbox/channel.h"
#include "source/sandbox/launcher.h"
#include "source/sandbox/output_capture.h"
#include "source/sandbox/pool.h"

namespace corral::sandbox {

struct LibraryOptions {
  std::string library_id;
  std::string library_path;
  std::string sandbox_binary;  // corral-sandbox
  PoolOptions pool;
  std::chrono::milliseconds heartbeat_interval{1000};
  bool seccomp = true;
  std::optional<uid_t> run_as;  // default: 65534 when running as root (launcher.h)
  std::optional<uint64_t> data_limit_bytes;
  // The process watches its own resident memory and ends with an out-of-memory report past
  // this (below the hard limit: a refused allocation is not always reported as such).
  std::optional<uint64_t> memory_watchdog_bytes;
  std::vector<std::string> env;  // "K=V": the process's whole environment
  uint32_t data_channels = 0;    // one per proxy worker (fds 7.., protocol.h)
  std::string setup;             // the Setup payload, the first message on the control channel
  std::string label;             // how logs name the library (default: library_id)
  std::string yaml_path;         // of library_path, for the process's error messages
  // A process said Ready: its data channels may carry streams now.
  std::function<void(size_t slot, pid_t pid, std::vector<std::shared_ptr<Channel>> data)> on_ready;
  // A process is gone. `reason`: its crash line or why we killed it, and how it ended;
  // `first_line`: the first line of its Go traceback (empty if none); `killed`: we killed it.
  std::function<void(size_t slot, pid_t pid, const std::string& reason,
                     const std::string& first_line, bool killed)>
      on_exit;
  // A StatsUpdate from a process; false if it is malformed (the process is killed).
  std::function<bool(pid_t pid, std::string_view payload)> on_stats;
  // A process could not load the library or its config (the message names the YAML path).
  std::function<void(const std::string& message)> on_load_failed;
};

// What the admin endpoint will show, per process.
struct ProcessView {
  pid_t pid = -1;
  bool ready = false;
  Pool::SlotState state = Pool::SlotState::BackingOff;
  std::string last_failure;  // first crash line, or how it ended
};

class Supervisor {
public:
  Supervisor(event::Dispatcher& dispatcher, Launcher& launcher);
  ~Supervisor();

  // Opens the library (so the unprivileged process can load it through an fd) and starts its
  // pool. Errors name the library.
  absl::Status addLibrary(LibraryOptions options);
  std::vector<ProcessView> processes(const std::string& library_id) const;
  // SIGKILLs a process of the library (it is then replaced); `reason` becomes its last failure.
  // A pid not found under `library_id` is looked for under every library (a reloaded one).
  void kill(const std::string& library_id, pid_t pid, const std::string& reason);
  // Stops a library's processes (kill and reap; no on_exit) and forgets it.
  void remove(const std::string& library_id);
  const PoolCounters* counters(const std::string& library_id) const;
  // Reads what the processes have sent so far (before /stats is rendered).
  void poll();
  // Kills and reaps every process.
  void stop();

private:
  struct Library;
  struct Running;  // one live process: its channel, pidfd and output watches
  void onExit(Library& lib, pid_t pid);
  void onChannel(Library& lib, size_t slot);
  void onOutput(Library& lib, size_t slot);
  void onHeartbeat(Library& lib);
  void armPoolTimer(Library& lib);
  void watch(Library& lib, size_t slot);

  event::Dispatcher& dispatcher_;
  Launcher& launcher_;
  std::map<std::string, std::unique_ptr<Library>> libraries_;
};

}  // namespace corral::sandbox
