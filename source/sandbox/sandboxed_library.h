#pragma once
// The proxy's side of a sandboxed plugin library: its supervised processes (supervisor.h) as
// the workers see them, and the stream traffic on them.
//
// Each process has one data channel per worker (protocol.h), so a ring has one producer thread
// on each side and needs no lock. The main thread learns of a process becoming ready or dying
// (supervisor callbacks) and tells each worker through a small inbox and a post; the worker
// then opens (or fails) its WorkerLink to that process. A stream is given to a live process
// when it starts and stays there (pick()); `processes` of them take streams, the rest of the
// pool are warm spares that take over at once when one dies.
//
// Everything read from a process is untrusted: a message that does not parse, names an unknown
// stream or is not an action costs that process (killed through the main thread) and fails its
// streams; never the proxy.
//
// Thread-safety: say per method. Counters are the stats store's (any thread).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/stats.h"
#include "source/config/bootstrap.h"
#include "source/event/dispatcher.h"
#include "source/event/fd_watch.h"
#include "source/sandbox/channel.h"
#include "source/sandbox/launcher.h"
#include "source/sandbox/protocol.h"
#include "source/sandbox/stats_forwarding.h"
#include "source/sandbox/supervisor.h"
#include "source/sandbox/wire.h"

namespace corral::sandbox {

// The reason a link gives its streams when the process broke the protocol.
inline constexpr char kProtocolViolation[] = "protocol violation";

// A stream on a process, as the link sees it (the sandboxed Golang filter). Worker thread.
class StreamEndpoint {
public:
  virtual ~StreamEndpoint() = default;
  // An action for this stream, `r` positioned after the stream id. False if it is malformed or
  // not acceptable now: the process is then killed.
  virtual bool onAction(MessageType type, WireReader& r) = 0;
  // The process is gone or cut off; `reason` says why (logs, the x-corral-sandbox header).
  virtual void onSandboxLost(const std::string& reason) = 0;
  // The channel's backlog has drained (after notifyDrained()).
  virtual void onLinkDrained() {}
};

class SandboxedLibrary;

// One process as one worker sees it. Worker thread only.
class WorkerLink {
public:
  WorkerLink(SandboxedLibrary& library, event::Dispatcher& dispatcher, pid_t pid, size_t slot,
             uint32_t generation, std::shared_ptr<Channel> channel,
             std::shared_ptr<std::atomic<uint32_t>> in_flight);
  ~WorkerLink();

  // A new stream on this process; its id for send().
  uint64_t attach(StreamEndpoint& endpoint);
  void detach(uint64_t id);
  // Queues when the ring is full (retried on a short timer). Payloads must fit a ring.
  // `urgent`: wakes the process at the end of this loop pass; otherwise (a stream's end, which
  // nothing waits for) the message rides along with the next wake-up, or one within 1 ms.
  void send(MessageType type, std::string payload, bool urgent = true);
  // Bytes waiting for room in the ring.
  size_t queuedBytes() const { return queued_bytes_; }
  // Calls the stream's onLinkDrained() once the backlog is gone.
  void notifyDrained(uint64_t id) { drain_waiters_.push_back(id); }
  pid_t pid() const { return pid_; }
  size_t slot() const { return slot_; }
  uint32_t generation() const { return generation_; }
  bool dead() const { return dead_ || broken_; }
  size_t streams() const { return endpoints_.size(); }
  // The process is gone: every stream on it is told.
  void fail(const std::string& reason);

private:
  void onReadable();
  void flush();
  void breakLink();

  SandboxedLibrary& library_;
  event::Dispatcher& dispatcher_;
  const pid_t pid_;
  const size_t slot_;
  const uint32_t generation_;
  std::shared_ptr<Channel> channel_;
  std::shared_ptr<std::atomic<uint32_t>> in_flight_;
  RingReader in_;
  RingWriter out_;
  std::unique_ptr<event::FdWatch> watch_;
  event::TimerPtr retry_;
  event::TimerPtr fail_timer_;
  event::TimerPtr wake_timer_;  // wakes the process once per loop pass
  event::TimerPtr lazy_timer_;  // ... or soon, for what is not urgent
  bool broken_ = false;         // a write found the ring corrupt: failing at the next loop pass
  std::deque<std::pair<uint32_t, std::string>> queued_;
  size_t queued_bytes_ = 0;
  std::vector<uint64_t> drain_waiters_;
  std::map<uint64_t, StreamEndpoint*> endpoints_;
  uint64_t next_id_ = 1;
  bool dead_ = false;
};

struct SandboxCounters {
  SandboxCounters(stats::Store& store, const std::string& library_id);
  stats::Counter& crash;
  stats::Counter& timeout;
  stats::Counter& oom;
  stats::Counter& killed;
  stats::Counter& restarts;
  stats::Counter& fail_open;
  stats::Counter& fail_closed;
};

class SandboxedLibrary {
public:
  using Options = config::Bootstrap::GolangLibrary;
  SandboxedLibrary(std::string library_id, std::string library_path, Options options,
                   uint32_t workers, event::Dispatcher& main, stats::Store& stats);

  const std::string& id() const { return id_; }
  // The library_path of the generation taking new streams (main thread).
  const std::string& path() const { return path_; }
  const Options& options() const { return options_; }
  SandboxCounters& counters() { return counters_; }

  // Worker thread: the link to give a new stream to, or nullptr when no process is ready.
  WorkerLink* pick(event::Dispatcher& worker);
  // Worker thread (from a link): the process broke the protocol; kill it (main thread).
  void killProcess(pid_t pid, const std::string& reason);

  // Main thread: what the supervisor reports. `generation`: which pool (hot reload starts a
  // new one; see SandboxManager::reload()).
  void onReady(size_t slot, pid_t pid, std::vector<std::shared_ptr<Channel>> data,
               uint32_t generation = 0);
  void onExit(size_t slot, pid_t pid, const std::string& reason, const std::string& first_line,
              bool killed);
  // Main thread, hot reload: new streams go to `generation` (from `path`) from now on.
  void switchTo(uint32_t generation, std::string path);
  uint32_t generation() const { return generation_.load(); }
  // Main thread: streams still on the processes of `generation`.
  uint32_t inFlight(uint32_t generation) const;
  // Main thread: `generation`'s processes are being stopped; workers drop their links.
  void retire(uint32_t generation);
  bool onStats(pid_t pid, std::string_view payload) { return stats_mirror_.apply(pid, payload); }
  void setSupervisor(Supervisor* supervisor) { supervisor_ = supervisor; }
  // Main thread, workers stopped: drops every link (their watches are on worker loops).
  // (Also frees the retired ones.)
  void dropLinks();

  // For GET /golang/sandboxes (main thread).
  struct ProcessInfo {
    pid_t pid;
    size_t slot;
    std::chrono::steady_clock::time_point started;
    uint32_t in_flight;
  };
  std::vector<ProcessInfo> liveProcesses() const;
  struct Failure {
    std::string kind;        // crash, oom, killed
    std::string detail;      // the first crash line (or why it was killed) and how it ended
    std::string first_line;  // the first line of the Go traceback, if it printed one
  };
  // Replacements started in a slot of the current generation (main thread).
  uint64_t slotRestarts(size_t slot) const {
    auto it = slot_restarts_.find({generation_.load(), slot});
    return it == slot_restarts_.end() ? 0 : it->second;
  }
  // The last failure of each slot that had one (main thread).
  const std::map<size_t, Failure>& lastFailures() const { return last_failures_; }
  bool anyReady() const { return ready_count_.load() > 0; }
  uint32_t readyCount() const { return ready_count_.load(); }
  // Processes that died before they were ready (main thread).
  uint64_t startFailures() const { return start_failures_; }

private:
  struct Update {
    bool add;
    pid_t pid;
    size_t slot;
    uint32_t generation;
    std::shared_ptr<Channel> channel;
    std::shared_ptr<std::atomic<uint32_t>> in_flight;
    std::string reason;
  };
  struct Worker {
    std::mutex mu;
    std::vector<Update> inbox;        // under mu
    std::atomic<uint64_t> posted{0};  // bumped with each update
    std::atomic<event::Dispatcher*> dispatcher{nullptr};
    // Worker thread only:
    uint64_t seen = 0;
    std::vector<std::unique_ptr<WorkerLink>> links;    // in slot order
    std::vector<std::unique_ptr<WorkerLink>> retired;  // failed, freed from the loop
    size_t next = 0;                                   // round-robin among the active ones
  };
  struct Live {
    pid_t pid;
    size_t slot;
    uint32_t generation;
    std::chrono::steady_clock::time_point started;
    std::shared_ptr<std::atomic<uint32_t>> in_flight;
  };
  void sync(Worker& w);
  // An update for every worker / for one; the worker is told through a post if it has a loop.
  void push(Update u);
  void deliver(Worker& w, Update u);

  const std::string id_;
  std::string path_;                     // main thread
  std::atomic<uint32_t> generation_{0};  // the one taking new streams
  const Options options_;
  event::Dispatcher& main_;
  SandboxCounters counters_;
  StatsMirror stats_mirror_;  // main thread
  Supervisor* supervisor_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<pid_t, Live> live_;                                // main thread
  std::map<std::pair<uint32_t, size_t>, bool> slot_started_;  // main: a later start is a restart
  std::map<size_t, Failure> last_failures_;                   // main thread
  std::map<std::pair<uint32_t, size_t>, uint64_t> slot_restarts_;  // main thread
  uint64_t start_failures_ = 0;                                    // main thread
  std::atomic<uint32_t> ready_count_{0};
};

}  // namespace corral::sandbox
