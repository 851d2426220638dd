#pragma once
// The process: loads config, builds clusters and listeners, runs N workers and the admin
// endpoint on the main thread, and handles signals (SIGTERM/SIGINT: drain, then exit 0).

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "source/admin/admin_server.h"
#include "source/common/stats.h"
#include "source/config/bootstrap.h"
#include "source/event/dispatcher.h"
#include "source/http/conn_manager_config.h"
#include "source/http/filter_registry.h"
#include "source/sandbox/sandbox_manager.h"
#include "source/server/worker.h"
#include "source/upstream/cluster_manager.h"

struct event;

namespace corral::server {

struct Options {
  std::string config_path;
  uint32_t concurrency = 0;  // 0: number of cores
  std::string log_level = "info";
  std::chrono::seconds drain_time{10};
  std::string admin_address_path;
  std::string sandbox_binary;  // default: corral-sandbox beside this executable
};

class Server : public admin::AdminHandler {
public:
  explicit Server(Options options);
  ~Server() override;

  // Loads and checks everything that can be checked without binding sockets.
  absl::Status load();
  // Binds, starts workers and admin, runs until shut down. Returns the exit code.
  int run();
  const config::Bootstrap& bootstrap() const { return bootstrap_; }

  // AdminHandler
  admin::AdminResponse handle(std::string_view method, std::string_view path,
                              std::string_view query) override;

private:
  struct BoundListener {
    std::string name;
    std::string address;   // "ip:port" as bound
    std::vector<int> fds;  // one per worker
  };
  absl::Status bindListeners();
  void shutdown(bool drain);
  void onSignal(int sig);
  // SIGHUP: re-reads the config; sandboxed libraries with a new library_path are reloaded.
  void reload();
  std::string configDumpJson() const;
  std::string serverInfoJson() const;
  std::string listenersText(bool json) const;

  Options options_;
  config::Bootstrap bootstrap_;
  stats::Store stats_;
  http::FilterRegistry registry_;
  std::unique_ptr<upstream::ClusterManager> cluster_manager_;
  std::vector<http::ConnectionManagerConfigSharedPtr> hcm_configs_;
  std::vector<BoundListener> listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
  event::Dispatcher main_;
  // After main_ (its supervisor watches main_'s loop, so it goes first).
  std::unique_ptr<sandbox::SandboxManager> sandboxes_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::vector<struct event*> signal_events_;
  event::TimerPtr drain_timer_;
  std::chrono::steady_clock::time_point start_time_;
  std::atomic<size_t> workers_drained_{0};
  bool health_check_failed_ = false;
  bool shutting_down_ = false;
};

}  // namespace corral::server
