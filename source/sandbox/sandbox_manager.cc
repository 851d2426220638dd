#include "source/sandbox/sandbox_manager.h"

#include <event2/event.h>

#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "source/common/logger.h"
#include "source/sandbox/protocol.h"
#include "source/sandbox/wire.h"

namespace corral::sandbox {
namespace {

SandboxManager* g_current = nullptr;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kDataLimitWorks = false;  // ASan's shadow memory counts against RLIMIT_DATA
#else
constexpr bool kDataLimitWorks = true;
#endif

const char* stateName(Pool::SlotState s) {
  switch (s) {
  case Pool::SlotState::Running:
    return "running";
  case Pool::SlotState::BackingOff:
    return "backing_off";
  case Pool::SlotState::Broken:
    return "circuit_open";
  case Pool::SlotState::Stopped:
    return "stopped";
  }
  return "?";
}

}  // namespace

SandboxManager::SandboxManager(event::Dispatcher& main, stats::Store& stats,
                               std::string sandbox_binary, std::string config_yaml,
                               uint32_t workers)
    : main_(main),
      stats_(stats),
      binary_(std::move(sandbox_binary)),
      yaml_(std::move(config_yaml)),
      workers_(workers),
      supervisor_(main, launcher_) {}

SandboxManager::~SandboxManager() {
  stop();
  if (g_current == this) {
    g_current = nullptr;
  }
}

SandboxManager* SandboxManager::current() {
  return g_current;
}

void SandboxManager::setCurrent(SandboxManager* manager) {
  g_current = manager;
}

absl::StatusOr<std::shared_ptr<SandboxedLibrary>> SandboxManager::library(
    const std::string& library_id, const std::string& library_path,
    const config::Bootstrap::GolangLibrary& options, const std::string& plugin,
    const std::string& yaml_path) {
  auto it = entries_.find(library_id);
  if (it != entries_.end()) {
    if (it->second.library->path() != library_path) {
      return absl::InvalidArgumentError(fmt::format(
          "{}.library_path: library_id \"{}\" is already used with \"{}\"; one library_id, one "
          "library_path",
          yaml_path, library_id, it->second.library->path()));
    }
    it->second.plugins.push_back(plugin);
    return it->second.library;
  }
  if (started_) {
    return absl::FailedPreconditionError("sandboxes are already started");
  }
  Entry e;
  e.library = std::make_shared<SandboxedLibrary>(library_id, library_path, options, workers_, main_,
                                                 stats_);
  e.yaml_path = yaml_path;
  e.plugins.push_back(plugin);
  auto lib = e.library;
  entries_[library_id] = std::move(e);
  return lib;
}

absl::Status SandboxManager::launch(const std::string& id, Entry& e, uint32_t generation,
                                    const std::string& path, const std::string& yaml) {
  const auto& o = e.library->options();
  LibraryOptions lo;
  lo.library_id = generation == 0 ? id : fmt::format("{}@{}", id, generation);
  lo.library_path = path;
  lo.sandbox_binary = binary_;
  lo.yaml_path = e.yaml_path + ".library_path";
  lo.pool.processes = o.processes + o.warm_spares;
  lo.pool.restart_base = o.restart_backoff_base;
  lo.pool.restart_max = o.restart_backoff_max;
  lo.heartbeat_interval = o.heartbeat_interval;
  lo.seccomp = o.seccomp;
  // The hard limit is RLIMIT_DATA. But a Go runtime refused memory does not always say so (it
  // was seen crashing in its GC instead), so the process also watches its resident memory and
  // ends with an out-of-memory report at 90% of the limit. With ASan, whose shadow memory counts
  // against RLIMIT_DATA, the watch is the limit.
  if (kDataLimitWorks) {
    lo.data_limit_bytes = o.memory_limit_bytes;
    lo.memory_watchdog_bytes = o.memory_limit_bytes / 10 * 9;
  } else {
    lo.memory_watchdog_bytes = o.memory_limit_bytes;
  }
  bool has_gomemlimit = false;
  for (const auto& [k, v] : o.env) {
    lo.env.push_back(k + "=" + v);
    has_gomemlimit = has_gomemlimit || k == "GOMEMLIMIT";
  }
  if (!has_gomemlimit) {
    // The soft limit below the hard one: Go collects harder before the kernel refuses memory.
    lo.env.push_back(fmt::format("GOMEMLIMIT={}", o.memory_limit_bytes / 10 * 8));
  }
  lo.data_channels = workers_;
  WireWriter w(lo.setup);
  w.bytes(id);
  w.u32(workers_);
  w.bytes(yaml);
  std::string plugins;
  for (const auto& p : e.plugins) {
    plugins += (plugins.empty() ? "" : ", ") + p;
  }
  lo.label = fmt::format("{} ({})", id, plugins);
  SandboxedLibrary* lib = e.library.get();
  lo.on_ready = [this, lib, &e, generation, path](size_t slot, pid_t pid,
                                                  std::vector<std::shared_ptr<Channel>> data) {
    lib->onReady(slot, pid, std::move(data), generation);
    if (generation > lib->generation()) {
      // A reloaded library is ready: new streams go to it, the old pool drains.
      const uint32_t old = lib->generation();
      lib->switchTo(generation, path);
      e.draining.push_back({old, std::chrono::steady_clock::now()});
      CORRAL_LOG(info, "[sandbox {}] reloaded from {}; the old processes drain", lib->id(), path);
      drain_timer_->enable(std::chrono::milliseconds(50));
    }
  };
  lo.on_exit = [lib](size_t slot, pid_t pid, const std::string& reason,
                     const std::string& first_line,
                     bool killed) { lib->onExit(slot, pid, reason, first_line, killed); };
  lo.on_stats = [lib](pid_t pid, std::string_view payload) { return lib->onStats(pid, payload); };
  lo.on_load_failed = [this, &e, generation, id](const std::string& message) {
    if (generation == 0) {
      if (e.load_error.empty()) {
        e.load_error = message;
      }
      return;
    }
    // A reload whose library or config is refused: the running one stays.
    CORRAL_LOG(err, "[sandbox {}] reload refused, keeping the running library: {}", id, message);
    main_.post([this, key = fmt::format("{}@{}", id, generation)] { supervisor_.remove(key); });
  };
  e.library->setSupervisor(&supervisor_);
  auto status = supervisor_.addLibrary(std::move(lo));
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.library_path: {}", e.yaml_path, std::string(status.message())));
  }
  return absl::OkStatus();
}

absl::Status SandboxManager::start(std::chrono::milliseconds wait) {
  started_ = true;
  drain_timer_ = main_.createTimer([this] { onDrainTimer(); });
  for (auto& [id, e] : entries_) {
    if (auto s = launch(id, e, 0, e.library->path(), yaml_); !s.ok()) {
      return s;
    }
  }
  // Wait for each library: every process ready (spares too), refused, or out of time.
  bool timed_out = false;
  auto timer = main_.createTimer([&timed_out] { timed_out = true; });
  timer->enable(wait);
  auto settled = [this] {
    for (const auto& [id, e] : entries_) {
      // Settled: ready, refused its config, or crashing while it starts (a plugin that
      // panics in Parse: the proxy serves on, the plugin's streams fail as configured).
      const auto& o = e.library->options();
      if (e.library->readyCount() < o.processes + o.warm_spares && e.load_error.empty() &&
          e.library->startFailures() == 0) {
        return false;
      }
    }
    return true;
  };
  while (!settled() && !timed_out) {
    event_base_loop(main_.base(), EVLOOP_ONCE);
  }
  for (const auto& [id, e] : entries_) {
    if (!e.load_error.empty()) {
      return absl::InvalidArgumentError(e.load_error);
    }
    if (!e.library->anyReady()) {
      CORRAL_LOG(err,
                 "[sandbox {}] no process is ready ({} died while starting); its streams get "
                 "their on_failure action until one is",
                 id, e.library->startFailures());
    }
  }
  return absl::OkStatus();
}

namespace {

// The Golang filters of `library_id` in a config: their YAML paths and the library_path.
void golangFilters(const config::Bootstrap& b, const std::string& library_id,
                   std::set<std::string>* keys, std::set<std::string>* paths) {
  for (const auto& l : b.listeners) {
    for (const auto& f : l.hcm.http_filters) {
      const YAML::Node path = f.typed_config.node["library_path"];
      if (isGolangFilterOf(f, library_id) && path && path.IsScalar()) {
        keys->insert(f.typed_config.path);
        paths->insert(path.Scalar());
      }
    }
  }
}

}  // namespace

void SandboxManager::reload(const config::Bootstrap& fresh, const std::string& yaml) {
  for (auto& [id, e] : entries_) {
    std::set<std::string> keys, paths, old_keys, old_paths;
    golangFilters(fresh, id, &keys, &paths);
    if (paths.size() != 1 || *paths.begin() == e.library->path()) {
      continue;  // unchanged (or no longer one library_path: left as it runs)
    }
    golangFilters(*current_, id, &old_keys, &old_paths);
    if (keys != old_keys) {
      CORRAL_LOG(err,
                 "[sandbox {}] not reloaded: its Golang filters moved in the config (only a new "
                 "library_path is applied on SIGHUP; restart corral for the rest)",
                 id);
      continue;
    }
    const uint32_t generation = ++e.generations;
    CORRAL_LOG(info, "[sandbox {}] reloading: {} -> {}", id, e.library->path(), *paths.begin());
    if (auto s = launch(id, e, generation, *paths.begin(), yaml); !s.ok()) {
      CORRAL_LOG(err, "[sandbox {}] reload refused: {}", id, std::string(s.message()));
    }
  }
}

void SandboxManager::onDrainTimer() {
  bool more = false;
  const auto now = std::chrono::steady_clock::now();
  for (auto& [id, e] : entries_) {
    for (auto it = e.draining.begin(); it != e.draining.end();) {
      // A worker that picked a process just before the switch attaches its stream right after:
      // give that a moment before trusting a zero.
      if (now - it->since < std::chrono::milliseconds(100) ||
          e.library->inFlight(it->generation) > 0) {
        ++it;
        more = true;
        continue;
      }
      e.library->retire(it->generation);
      supervisor_.remove(it->generation == 0 ? id : fmt::format("{}@{}", id, it->generation));
      CORRAL_LOG(info, "[sandbox {}] the processes of the old library are stopped", id);
      it = e.draining.erase(it);
    }
  }
  if (more) {
    drain_timer_->enable(std::chrono::milliseconds(50));
  }
}

void SandboxManager::stop() {
  for (auto& [id, e] : entries_) {
    e.library->dropLinks();
    e.library->setSupervisor(nullptr);
  }
  supervisor_.stop();
}

std::string SandboxManager::json() const {
  nlohmann::json libs = nlohmann::json::array();
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, e] : entries_) {
    auto& c = e.library->counters();
    nlohmann::json procs = nlohmann::json::array();
    const auto live = e.library->liveProcesses();
    const auto views = supervisor_.processes(id);
    const auto& failures = e.library->lastFailures();
    for (size_t slot = 0; slot < views.size(); ++slot) {
      const ProcessView& v = views[slot];
      nlohmann::json p = {{"slot", slot},
                          {"pid", v.pid},
                          {"state", stateName(v.state)},
                          {"ready", v.ready},
                          {"role", slot < e.library->options().processes ? "active" : "spare"}};
      for (const auto& l : live) {
        if (l.pid == v.pid) {
          p["uptime_seconds"] = std::chrono::duration<double>(now - l.started).count();
          p["in_flight"] = l.in_flight;
        }
      }
      auto f = failures.find(slot);
      if (f != failures.end()) {
        p["last_failure"] = {{"kind", f->second.kind},
                             {"reason", f->second.detail},
                             {"first_traceback_line", f->second.first_line}};
      }
      p["restarts"] = e.library->slotRestarts(slot);
      procs.push_back(p);
    }
    libs.push_back({{"library_id", id},
                    {"library_path", e.library->path()},
                    {"plugins", e.plugins},
                    {"processes", procs},
                    {"counters",
                     {{"crash", c.crash.value()},
                      {"timeout", c.timeout.value()},
                      {"oom", c.oom.value()},
                      {"killed", c.killed.value()},
                      {"restarts", c.restarts.value()},
                      {"fail_open", c.fail_open.value()},
                      {"fail_closed", c.fail_closed.value()}}}});
  }
  return nlohmann::json({{"libraries", libs}}).dump(2);
}

}  // namespace corral::sandbox
