#pragma once
// The sandboxed plugin libraries of the process, with the supervisor that runs their processes
// (DESIGN.md §5). The server makes one before it loads the config; the Golang filter's factory
// asks it for a library's runtime when the library's isolation is `sandbox`; the server then
// starts the processes and waits for each library to be ready (a config error found in the
// sandbox — the plugin's Parse refusing its config — fails the start-up like any config error).
//
// Thread-safety: main thread only, except what SandboxedLibrary says.

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "source/common/stats.h"
#include "source/config/bootstrap.h"
#include "source/event/dispatcher.h"
#include "source/sandbox/launcher.h"
#include "source/sandbox/sandboxed_library.h"
#include "source/sandbox/supervisor.h"

namespace corral::sandbox {

class SandboxManager {
public:
  // `config_yaml`: the whole config, sent to each process (it builds its filters from it).
  SandboxManager(event::Dispatcher& main, stats::Store& stats, std::string sandbox_binary,
                 std::string config_yaml, uint32_t workers);
  ~SandboxManager();

  // The one the config loader uses (set by the server while it lives).
  static SandboxManager* current();
  static void setCurrent(SandboxManager* manager);

  // The runtime of `library_id` (made on first use). `plugin` is added to the names logs use.
  absl::StatusOr<std::shared_ptr<SandboxedLibrary>> library(
      const std::string& library_id, const std::string& library_path,
      const config::Bootstrap::GolangLibrary& options, const std::string& plugin,
      const std::string& yaml_path);
  // Starts every library's processes and runs the main loop until each library has a ready
  // process, failed to load (returned: the message names the YAML path), or `wait` is over (a
  // crashing plugin: logged; its streams get their on_failure action).
  absl::Status start(std::chrono::milliseconds wait);
  // SIGHUP: a library whose library_path changed in `fresh` (its filters where they were) gets
  // a new pool from the new file and config; once that is ready new streams go to it, and the
  // old pool is stopped when its last stream is done. Other changes need a restart (logged).
  void reload(const config::Bootstrap& fresh, const std::string& yaml);
  // The config the libraries run with (for reload()'s comparison).
  void setConfig(const config::Bootstrap* current) { current_ = current; }
  // Workers stopped: drop their links, kill and reap every process.
  void stop();
  // Takes in what the processes sent so far (their stats), before /stats is rendered.
  void poll() { supervisor_.poll(); }
  // GET /golang/sandboxes.
  std::string json() const;

private:
  struct Entry {
    std::shared_ptr<SandboxedLibrary> library;
    std::string yaml_path;
    std::vector<std::string> plugins;
    std::string load_error;
    uint32_t generations = 0;  // pools started by reloads
    struct Draining {
      uint32_t generation;
      std::chrono::steady_clock::time_point since;
    };
    std::vector<Draining> draining;
  };
  absl::Status launch(const std::string& id, Entry& e, uint32_t generation, const std::string& path,
                      const std::string& yaml);
  void onDrainTimer();

  event::Dispatcher& main_;
  stats::Store& stats_;
  const std::string binary_;
  const std::string yaml_;
  const uint32_t workers_;
  PosixLauncher launcher_;
  Supervisor supervisor_;
  std::map<std::string, Entry> entries_;
  const config::Bootstrap* current_ = nullptr;
  event::TimerPtr drain_timer_;
  bool started_ = false;
};

}  // namespace corral::sandbox
