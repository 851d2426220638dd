#include "source/sandbox/sandbox_manager.h"

#include <event2/event.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "source/common/logger.h"
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

absl::Status SandboxManager::start(std::chrono::milliseconds wait) {
  started_ = true;
  for (auto& [id, entry] : entries_) {
    Entry& e = entry;
    const auto& o = e.library->options();
    LibraryOptions lo;
    lo.library_id = id;
    lo.library_path = e.library->path();
    lo.sandbox_binary = binary_;
    lo.yaml_path = e.yaml_path + ".library_path";
    lo.pool.processes = o.processes + o.warm_spares;
    lo.pool.restart_base = o.restart_backoff_base;
    lo.pool.restart_max = o.restart_backoff_max;
    lo.heartbeat_interval = o.heartbeat_interval;
    lo.seccomp = o.seccomp;
    if (kDataLimitWorks) {
      lo.data_limit_bytes = o.memory_limit_bytes;
    } else {
      // ASan's shadow memory counts against RLIMIT_DATA: the process watches its RSS instead.
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
    w.bytes(yaml_);
    std::string plugins;
    for (const auto& p : e.plugins) {
      plugins += (plugins.empty() ? "" : ", ") + p;
    }
    lo.label = fmt::format("{} ({})", id, plugins);
    SandboxedLibrary* lib = e.library.get();
    lo.on_ready = [lib](size_t slot, pid_t pid, std::vector<std::shared_ptr<Channel>> data) {
      lib->onReady(slot, pid, std::move(data));
    };
    lo.on_exit = [lib](size_t slot, pid_t pid, const std::string& reason, bool killed) {
      lib->onExit(slot, pid, reason, killed);
    };
    lo.on_stats = [lib](pid_t pid, std::string_view payload) {
      return lib->onStats(pid, payload);
    };
    lo.on_load_failed = [&e](const std::string& message) {
      if (e.load_error.empty()) {
        e.load_error = message;
      }
    };
    e.library->setSupervisor(&supervisor_);
    auto status = supervisor_.addLibrary(std::move(lo));
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}.library_path: {}", e.yaml_path, std::string(status.message())));
    }
  }
  // Wait for each library: ready, refused, or out of time.
  bool timed_out = false;
  auto timer = main_.createTimer([&timed_out] { timed_out = true; });
  timer->enable(wait);
  auto settled = [this] {
    for (const auto& [id, e] : entries_) {
      // Settled: ready, refused its config, or crashing while it starts (a plugin that
      // panics in Parse: the proxy serves on, the plugin's streams fail as configured).
      if (!e.library->anyReady() && e.load_error.empty() && e.library->startFailures() == 0) {
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
          p["uptime_seconds"] =
              std::chrono::duration<double>(now - l.started).count();
          p["in_flight"] = l.in_flight;
        }
      }
      auto f = failures.find(slot);
      if (f != failures.end()) {
        p["last_failure"] = {{"kind", f->second.kind}, {"reason", f->second.detail}};
      }
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
