#include "source/sandbox/supervisor.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/event/fd_watch.h"
#include "source/sandbox/protocol.h"

namespace corral::sandbox {
namespace {

using event::FdWatch;

constexpr uint32_t kChannelCapacity = 1 << 20;
constexpr uint32_t kMaxActionPayload = 1 << 20;
constexpr int kMissedHeartbeatsToKill = 3;
constexpr uint32_t kMaxLoggedLinesPerSecond = 200;

}  // namespace

struct Supervisor::Running {
  pid_t pid = -1;
  std::unique_ptr<Channel> channel;
  std::vector<std::shared_ptr<Channel>> data;  // one per worker
  bool killed = false;                         // by us (heartbeat, protocol, kill())
  std::string kill_reason;                     // ... and why
  std::string load_failure;                    // what its LoadFailed said
  std::optional<RingReader> reader;
  std::optional<RingWriter> writer;
  std::unique_ptr<OutputCapture> output;
  int output_write_fd = -1;  // the child's end, closed once it is spawned
  std::unique_ptr<FdWatch> exit_watch, channel_watch, output_watch;
  bool ready = false;
  int missed_heartbeats = 0;
  // Output logging is rate-limited (a plugin printing in a loop must not flood the log).
  Clock::time_point log_window;
  uint32_t logged_in_window = 0;
  uint64_t dropped = 0;

  ~Running() {
    if (output_write_fd >= 0) {
      ::close(output_write_fd);
    }
  }
};

struct Supervisor::Library {
  LibraryOptions options;
  int library_fd = -1;
  std::unique_ptr<Pool> pool;
  std::vector<std::unique_ptr<Running>> running;  // per slot
  std::vector<std::unique_ptr<Running>> pending;  // made for the next spawn of the slot
  std::vector<std::string> last_failure;          // per slot
  event::TimerPtr pool_timer;
  event::TimerPtr heartbeat_timer;

  ~Library() {
    if (library_fd >= 0) {
      ::close(library_fd);
    }
  }
};

Supervisor::Supervisor(event::Dispatcher& dispatcher, Launcher& launcher)
    : dispatcher_(dispatcher), launcher_(launcher) {}

Supervisor::~Supervisor() {
  stop();
}

absl::Status Supervisor::addLibrary(LibraryOptions options) {
  if (libraries_.count(options.library_id) != 0) {
    return absl::AlreadyExistsError(
        fmt::format("library {} is supervised already", options.library_id));
  }
  auto lib = std::make_unique<Library>();
  lib->library_fd = ::open(options.library_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (lib->library_fd < 0) {
    return absl::NotFoundError(fmt::format("{}: {}", options.library_path, std::strerror(errno)));
  }
  lib->options = std::move(options);
  if (lib->options.label.empty()) {
    lib->options.label = lib->options.library_id;
  }
  Library& l = *lib;
  const size_t n = std::max<uint32_t>(l.options.pool.processes, 1);
  l.running.resize(n);
  l.pending.resize(n);
  l.last_failure.resize(n);
  // Each spawn gets a fresh channel and output pipe, made here and picked up after the spawn.
  auto spec = [&l](size_t slot) {
    auto r = std::make_unique<Running>();
    SpawnSpec s;
    s.path = l.options.sandbox_binary;
    s.args = {
        "--name",      l.options.library_path,
        "--seccomp",   l.options.seccomp ? "default" : "off",
        "--workers",   std::to_string(l.options.data_channels),
        "--log-level", std::string(spdlog::level::to_string_view(Logger::get().level()).data())};
    s.env = l.options.env;
    if (l.options.memory_watchdog_bytes) {
      s.args.insert(s.args.end(),
                    {"--memory-watchdog", std::to_string(*l.options.memory_watchdog_bytes)});
    }
    if (!l.options.yaml_path.empty()) {
      s.args.insert(s.args.end(), {"--yaml-path", l.options.yaml_path});
    }
    s.run_as = l.options.run_as ? l.options.run_as : std::optional<uid_t>(65534);
    s.data_limit_bytes = l.options.data_limit_bytes;
    auto channel = Channel::create(kChannelCapacity);
    int out[2] = {-1, -1};
    if (channel.ok() && ::pipe2(out, O_CLOEXEC) == 0) {
      r->channel = std::move(*channel);
      r->output = std::make_unique<OutputCapture>(out[0]);
      r->output_write_fd = out[1];
      s.channel_fds[0] = r->channel->memfd();
      s.channel_fds[1] = r->channel->toSandboxEventfd();
      s.channel_fds[2] = r->channel->toProxyEventfd();
      s.output_fd = out[1];
      s.extra_fds = {l.library_fd};
      for (uint32_t w = 0; w < l.options.data_channels && !s.path.empty(); ++w) {
        auto d = Channel::create(kChannelCapacity);
        if (!d.ok()) {
          s.path.clear();
          break;
        }
        s.extra_fds.push_back((*d)->memfd());
        s.extra_fds.push_back((*d)->toSandboxEventfd());
        s.extra_fds.push_back((*d)->toProxyEventfd());
        r->data.push_back(std::move(*d));
      }
    } else {
      s.path.clear();  // spawn fails with a clear error; the pool backs off
    }
    l.pending[slot] = std::move(r);
    return s;
  };
  l.pool = std::make_unique<Pool>(launcher_, spec, l.options.pool);
  l.pool_timer = dispatcher_.createTimer([this, &l] {
    l.pool->advance(Clock::now());
    for (size_t i = 0; i < l.running.size(); ++i) {
      watch(l, i);
    }
    armPoolTimer(l);
  });
  l.heartbeat_timer = dispatcher_.createTimer([this, &l] { onHeartbeat(l); });
  const std::string id = l.options.library_id;
  libraries_[id] = std::move(lib);
  l.pool->start(Clock::now());
  for (size_t i = 0; i < l.running.size(); ++i) {
    watch(l, i);
  }
  armPoolTimer(l);
  l.heartbeat_timer->enable(l.options.heartbeat_interval);
  return absl::OkStatus();
}

// Picks up a process the pool has just started in `slot`.
void Supervisor::watch(Library& lib, size_t slot) {
  const Pool::Slot& s = lib.pool->slots()[slot];
  if (s.state != Pool::SlotState::Running ||
      (lib.running[slot] && lib.running[slot]->pid == s.process.pid) || !lib.pending[slot]) {
    return;
  }
  auto r = std::move(lib.pending[slot]);
  r->pid = s.process.pid;
  ::close(r->output_write_fd);
  r->output_write_fd = -1;
  r->reader.emplace(r->channel->proxyReader(kMaxActionPayload));
  r->writer.emplace(r->channel->proxyWriter());
  r->reader->prepareToWait(0);  // always wake us: the loop watches the eventfd
  r->writer->write(static_cast<uint32_t>(MessageType::Setup),
                   lib.options.setup.empty() ? emptySetup() : lib.options.setup);
  const pid_t pid = r->pid;
  r->exit_watch = std::make_unique<FdWatch>(dispatcher_, s.process.pidfd, false,
                                            [this, &lib, pid] { onExit(lib, pid); });
  r->channel_watch = std::make_unique<FdWatch>(dispatcher_, r->channel->toProxyEventfd(), true,
                                               [this, &lib, slot] { onChannel(lib, slot); });
  r->output_watch = std::make_unique<FdWatch>(dispatcher_, r->output->fd(), true,
                                              [this, &lib, slot] { onOutput(lib, slot); });
  lib.running[slot] = std::move(r);
}

void Supervisor::onOutput(Library& lib, size_t slot) {
  Running* r = lib.running[slot].get();
  if (r == nullptr) {
    return;
  }
  const auto now = Clock::now();
  for (const auto& line : r->output->drain()) {
    if (now - r->log_window >= std::chrono::seconds(1)) {
      if (r->dropped > 0) {
        CORRAL_LOG(warn, "[sandbox {} pid {}] {} lines dropped (over {} a second)",
                   lib.options.label, r->pid, r->dropped, kMaxLoggedLinesPerSecond);
      }
      r->log_window = now;
      r->logged_in_window = 0;
      r->dropped = 0;
    }
    // The crash line is always logged: it is why the process died.
    if (r->logged_in_window < kMaxLoggedLinesPerSecond || line == r->output->failureLine()) {
      ++r->logged_in_window;
      CORRAL_LOG(warn, "[sandbox {} pid {}] {}", lib.options.label, r->pid, line);
    } else if (r->dropped++ == 0) {
      CORRAL_LOG(warn, "[sandbox {} pid {}] over {} lines a second: lines dropped until the next",
                 lib.options.label, r->pid, kMaxLoggedLinesPerSecond);
    }
  }
}

void Supervisor::onChannel(Library& lib, size_t slot) {
  Running* r = lib.running[slot].get();
  if (r == nullptr) {
    return;
  }
  do {
    r->reader->doneWaiting();
    Message m;
    RingReader::Result res;
    while ((res = r->reader->read(&m)) == RingReader::Result::Message) {
      switch (static_cast<MessageType>(m.type)) {
      case MessageType::Ready:
        if (r->ready) {
          res = RingReader::Result::Corrupt;  // twice
          break;
        }
        r->ready = true;
        r->missed_heartbeats = 0;
        lib.pool->markReady(r->pid);
        if (lib.options.on_ready) {
          lib.options.on_ready(slot, r->pid, r->data);
        }
        break;
      case MessageType::Pong:
        r->missed_heartbeats = 0;
        break;
      case MessageType::StatsUpdate:
        if (!lib.options.on_stats || !lib.options.on_stats(r->pid, m.payload)) {
          res = RingReader::Result::Corrupt;
        }
        break;
      case MessageType::LoadFailed:
        r->load_failure = m.payload;
        lib.last_failure[slot] = "load failed: " + m.payload;
        CORRAL_LOG(err, "[sandbox {}] {}", lib.options.label, lib.last_failure[slot]);
        if (lib.options.on_load_failed) {
          lib.options.on_load_failed(m.payload);
        }
        break;
      default:
        res = RingReader::Result::Corrupt;  // a message it must not send
        break;
      }
      if (res == RingReader::Result::Corrupt) {
        break;
      }
    }
    if (res == RingReader::Result::Corrupt) {
      // Garbage from a sandbox costs that process, never the proxy.
      lib.last_failure[slot] = r->kill_reason = "protocol violation on the channel";
      CORRAL_LOG(err, "[sandbox {}] pid {}: protocol violation: killed", lib.options.label, r->pid);
      r->killed = true;
      launcher_.kill(r->pid, SIGKILL);
      return;
    }
  } while (r->reader->prepareToWait(0));
}

void Supervisor::onExit(Library& lib, pid_t pid) {
  for (size_t slot = 0; slot < lib.running.size(); ++slot) {
    Running* r = lib.running[slot].get();
    if (r == nullptr || r->pid != pid) {
      continue;
    }
    onOutput(lib, slot);  // whatever it printed last (a Go traceback), before we let go
    if (r->dropped > 0) {
      CORRAL_LOG(warn, "[sandbox {} pid {}] {} lines dropped (over {} a second)", lib.options.label,
                 r->pid, r->dropped, kMaxLoggedLinesPerSecond);
    }
    const std::string crash_line = r->output->failureLine();
    const bool killed = r->killed;
    const std::string kill_reason = r->kill_reason;
    const std::string load_failure = r->load_failure;
    lib.running[slot].reset();  // the watches go before the pool closes the pidfd
    if (!lib.pool->onExit(pid, Clock::now())) {
      return;
    }
    const auto& exit = lib.pool->slots()[slot].last_exit;
    std::string how = exit->signaled ? fmt::format("killed by signal {}", exit->code)
                                     : fmt::format("exited with {}", exit->code);
    if (!crash_line.empty()) {
      lib.last_failure[slot] = crash_line + " (" + how + ")";
    } else if (!kill_reason.empty()) {
      lib.last_failure[slot] = kill_reason + " (" + how + ")";
    } else if (!load_failure.empty()) {
      lib.last_failure[slot] = "load failed: " + load_failure;
    } else {
      lib.last_failure[slot] = how;
    }
    CORRAL_LOG(err, "[sandbox {}] pid {} {}: {}", lib.options.label, pid, how,
               lib.last_failure[slot]);
    if (lib.options.on_exit) {
      lib.options.on_exit(slot, pid, lib.last_failure[slot], crash_line, killed);
    }
    armPoolTimer(lib);
    return;
  }
}

void Supervisor::onHeartbeat(Library& lib) {
  for (size_t slot = 0; slot < lib.running.size(); ++slot) {
    Running* r = lib.running[slot].get();
    if (r == nullptr) {
      continue;
    }
    if (r->missed_heartbeats >= kMissedHeartbeatsToKill) {
      lib.last_failure[slot] = r->kill_reason =
          fmt::format("heartbeat: no answer for {} intervals", r->missed_heartbeats);
      CORRAL_LOG(err, "[sandbox {}] pid {}: {}: killed", lib.options.label, r->pid,
                 lib.last_failure[slot]);
      r->killed = true;
      launcher_.kill(r->pid, SIGKILL);
      continue;
    }
    ++r->missed_heartbeats;
    if (r->ready) {
      r->writer->write(static_cast<uint32_t>(MessageType::Ping), "");
    }
  }
  lib.heartbeat_timer->enable(lib.options.heartbeat_interval);
}

void Supervisor::armPoolTimer(Library& lib) {
  auto next = lib.pool->nextDeadline();
  if (!next) {
    lib.pool_timer->disable();
    return;
  }
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now());
  lib.pool_timer->enable(std::max(wait, std::chrono::milliseconds(0)));
}

std::vector<ProcessView> Supervisor::processes(const std::string& library_id) const {
  std::vector<ProcessView> out;
  auto it = libraries_.find(library_id);
  if (it == libraries_.end()) {
    return out;
  }
  const Library& lib = *it->second;
  for (size_t slot = 0; slot < lib.running.size(); ++slot) {
    ProcessView v;
    v.state = lib.pool->slots()[slot].state;
    if (lib.running[slot]) {
      v.pid = lib.running[slot]->pid;
      v.ready = lib.running[slot]->ready;
    }
    v.last_failure = lib.last_failure[slot];
    out.push_back(v);
  }
  return out;
}

void Supervisor::kill(const std::string& library_id, pid_t pid, const std::string& reason) {
  auto killIn = [&](Library& lib) {
    for (size_t slot = 0; slot < lib.running.size(); ++slot) {
      Running* r = lib.running[slot].get();
      if (r != nullptr && r->pid == pid) {
        lib.last_failure[slot] = r->kill_reason = reason;
        CORRAL_LOG(err, "[sandbox {}] pid {}: {}: killed", lib.options.label, pid, reason);
        r->killed = true;
        launcher_.kill(pid, SIGKILL);
        return true;
      }
    }
    return false;
  };
  auto it = libraries_.find(library_id);
  if (it != libraries_.end() && killIn(*it->second)) {
    return;
  }
  for (auto& [id, lib] : libraries_) {
    if (killIn(*lib)) {
      return;
    }
  }
}

void Supervisor::remove(const std::string& library_id) {
  auto it = libraries_.find(library_id);
  if (it == libraries_.end()) {
    return;
  }
  Library& lib = *it->second;
  lib.heartbeat_timer->disable();
  lib.pool_timer->disable();
  for (auto& r : lib.running) {
    r.reset();
  }
  lib.pool->stop();
  libraries_.erase(it);
}

const PoolCounters* Supervisor::counters(const std::string& library_id) const {
  auto it = libraries_.find(library_id);
  return it == libraries_.end() ? nullptr : &it->second->pool->counters();
}

void Supervisor::poll() {
  for (auto& [id, lib] : libraries_) {
    for (size_t slot = 0; slot < lib->running.size(); ++slot) {
      onChannel(*lib, slot);
    }
  }
}

void Supervisor::stop() {
  for (auto& [id, lib] : libraries_) {
    lib->heartbeat_timer->disable();
    lib->pool_timer->disable();
    for (auto& r : lib->running) {
      r.reset();
    }
    lib->pool->stop();
  }
}

}  // namespace corral::sandbox
