#include "source/server/server.h"

#include <event2/event.h>
#include <netdb.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "source/common/logger.h"
#include "source/config/bootstrap_loader.h"
#include "source/golang/golang_filter.h"
#include "source/router/router.h"
#include "source/sandbox/sandbox_manager.h"

#ifndef CORRAL_VERSION
#define CORRAL_VERSION "0.1.0"
#endif

namespace corral::server {

namespace {
nlohmann::json yamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
  case YAML::NodeType::Map: {
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& kv : node) {
      obj[kv.first.Scalar()] = yamlToJson(kv.second);
    }
    return obj;
  }
  case YAML::NodeType::Sequence: {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& v : node) {
      arr.push_back(yamlToJson(v));
    }
    return arr;
  }
  case YAML::NodeType::Scalar: {
    // Keep numbers and booleans typed, as Envoy's JSON dump does.
    const std::string& s = node.Scalar();
    if (node.Tag() != "!") {  // unquoted
      if (s == "true" || s == "false") {
        return s == "true";
      }
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && end != nullptr && *end == '\0' && errno == 0) {
        return v;
      }
    }
    return s;
  }
  default:
    return nullptr;
  }
}
}  // namespace

namespace {

// corral-sandbox is built beside corral.
std::string defaultSandboxBinary() {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    return "corral-sandbox";
  }
  std::string path(self, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/') + 1) + "corral-sandbox";
}

}  // namespace

Server::Server(Options options) : options_(std::move(options)) {
  router::registerRouter(registry_);
  golang::registerGolangFilter(registry_);
  start_time_ = std::chrono::steady_clock::now();
}

Server::~Server() {
  for (auto& w : workers_) {
    w->stop();
  }
  if (sandboxes_) {
    sandboxes_->stop();  // the links watch worker loops: before the workers go
  }
  workers_.clear();
  // No stream is left: drop the filter configs, then let each Go runtime collect what it still
  // holds of ours (requests and configs are freed by Go's finalizers).
  hcm_configs_.clear();
  golang::collectGoGarbage();
  for (auto* ev : signal_events_) {
    event_free(ev);
  }
  for (auto& l : listeners_) {
    for (int fd : l.fds) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
}

absl::Status Server::load() {
  if (options_.concurrency == 0) {
    options_.concurrency = std::max(1u, std::thread::hardware_concurrency());
  }
  if (options_.concurrency >= stats::kMaxSlots) {
    return absl::InvalidArgumentError(
        fmt::format("--concurrency must be below {}", stats::kMaxSlots));
  }
  auto bootstrap = config::loadBootstrapFromFile(options_.config_path);
  if (!bootstrap.ok()) {
    return bootstrap.status();
  }
  bootstrap_ = std::move(*bootstrap);
  for (const auto& w : bootstrap_.warnings) {
    CORRAL_LOG(warn, "config: {}", w);
  }
  auto cm = upstream::ClusterManager::create(bootstrap_, stats_);
  if (!cm.ok()) {
    return cm.status();
  }
  cluster_manager_ = std::move(*cm);
  // Sandboxed Go plugin libraries: the Golang filter's factory registers them here.
  sandboxes_ = std::make_unique<sandbox::SandboxManager>(
      main_, stats_,
      options_.sandbox_binary.empty() ? defaultSandboxBinary() : options_.sandbox_binary,
      YAML::Dump(bootstrap_.raw), options_.concurrency);
  sandbox::SandboxManager::setCurrent(sandboxes_.get());
  sandboxes_->setConfig(&bootstrap_);
  std::vector<std::string> errors;
  for (size_t i = 0; i < bootstrap_.listeners.size(); ++i) {
    const std::string path =
        fmt::format("static_resources.listeners[{}].filter_chains[0].filters[0].typed_config", i);
    auto hcm = http::ConnectionManagerConfig::create(bootstrap_.listeners[i].hcm, path, bootstrap_,
                                                     registry_, stats_, options_.concurrency);
    if (!hcm.ok()) {
      errors.emplace_back(hcm.status().message());
      continue;
    }
    hcm_configs_.push_back(std::move(*hcm));
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) {
      all += all.empty() ? e : "\n" + e;
    }
    return absl::InvalidArgumentError(all);
  }
  // Their processes parse the plugin configs: a refusal there is a config error here too.
  if (auto s = sandboxes_->start(std::chrono::seconds(10)); !s.ok()) {
    return s;
  }
  stats_.gauge("server.concurrency").inc(options_.concurrency);
  return absl::OkStatus();
}

absl::Status Server::bindListeners() {
  for (size_t i = 0; i < bootstrap_.listeners.size(); ++i) {
    const auto& l = bootstrap_.listeners[i];
    BoundListener bound;
    bound.name = l.name;
    uint32_t port = l.address.port;
    for (uint32_t w = 0; w < options_.concurrency; ++w) {
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
      addrinfo* res = nullptr;
      if (::getaddrinfo(l.address.address.c_str(), std::to_string(port).c_str(), &hints, &res) !=
          0) {
        return absl::InvalidArgumentError(fmt::format(
            "static_resources.listeners[{}].address.socket_address.address: \"{}\" is not an IP "
            "address",
            i, l.address.address));
      }
      const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      const int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
      const int rc = ::bind(fd, res->ai_addr, res->ai_addrlen);
      ::freeaddrinfo(res);
      if (rc != 0 || ::listen(fd, 4096) != 0) {
        const int err = errno;
        ::close(fd);
        listeners_.push_back(std::move(bound));
        return absl::UnavailableError(
            fmt::format("static_resources.listeners[{}] ({}): cannot listen on {}:{}: {}", i,
                        l.name, l.address.address, port, std::strerror(err)));
      }
      if (w == 0) {
        // Port 0: the kernel picked one; the other workers' sockets share it.
        sockaddr_storage addr{};
        socklen_t len = sizeof(addr);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        bound.address = addressToString(reinterpret_cast<sockaddr*>(&addr));
        port = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
      }
      bound.fds.push_back(fd);
    }
    CORRAL_LOG(info, "listener {} on {}", l.name, bound.address);
    listeners_.push_back(std::move(bound));
  }
  return absl::OkStatus();
}

int Server::run() {
  ::signal(SIGPIPE, SIG_IGN);
  if (auto s = bindListeners(); !s.ok()) {
    CORRAL_LOG(critical, "{}", std::string(s.message()));
    return 1;
  }
  if (bootstrap_.admin_address) {
    admin_ = std::make_unique<admin::AdminServer>(main_, *this);
    auto bound = admin_->listen(bootstrap_.admin_address->address, bootstrap_.admin_address->port);
    if (!bound.ok()) {
      CORRAL_LOG(critical, "{}", std::string(bound.status().message()));
      return 1;
    }
    CORRAL_LOG(info, "admin address: {}", *bound);
    if (!options_.admin_address_path.empty()) {
      std::ofstream out(options_.admin_address_path);
      out << *bound;
    }
  }
  for (uint32_t w = 0; w < options_.concurrency; ++w) {
    std::vector<ListenerSocket> sockets;
    for (size_t i = 0; i < listeners_.size(); ++i) {
      sockets.push_back({listeners_[i].fds[w], hcm_configs_[i]});
      listeners_[i].fds[w] = -1;  // the worker's listener owns it now
    }
    workers_.push_back(std::make_unique<Worker>(w, *cluster_manager_, std::move(sockets)));
  }
  for (auto& w : workers_) {
    w->start();
  }
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    struct event* ev = evsignal_new(
        main_.base(), sig,
        [](evutil_socket_t s, short, void* arg) {
          auto* server = static_cast<Server*>(arg);
          s == SIGHUP ? server->reload() : server->onSignal(s);
        },
        this);
    evsignal_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
  stats_.gauge("server.live").inc();
  CORRAL_LOG(info, "corral {} started with {} worker(s)", CORRAL_VERSION, options_.concurrency);
  main_.run();
  for (auto& w : workers_) {
    w->stop();
  }
  CORRAL_LOG(info, "corral exited");
  return 0;
}

void Server::reload() {
  auto fresh = config::loadBootstrapFromFile(options_.config_path);
  if (!fresh.ok()) {
    CORRAL_LOG(err, "SIGHUP: the config was not reloaded: {}",
               std::string(fresh.status().message()));
    return;
  }
  CORRAL_LOG(info,
             "SIGHUP: reloading sandboxed plugin libraries whose library_path changed (other "
             "changes take a restart)");
  sandboxes_->reload(*fresh, YAML::Dump(fresh->raw));
}

void Server::onSignal(int sig) {
  CORRAL_LOG(info, "caught signal {}: draining (up to {}s)", sig, options_.drain_time.count());
  shutdown(true);
}

void Server::shutdown(bool drain) {
  if (shutting_down_) {
    if (!drain) {
      main_.exit();
    }
    return;
  }
  shutting_down_ = true;
  if (!drain) {
    main_.exit();
    return;
  }
  // Drain: workers stop accepting and finish their in-flight requests; exit when all are done
  // or the drain time ends, whichever is first.
  drain_timer_ = main_.createTimer([this] {
    CORRAL_LOG(warn, "drain time over; closing remaining connections");
    main_.exit();
  });
  drain_timer_->enable(options_.drain_time);
  for (auto& w : workers_) {
    w->drain([this] {
      if (workers_drained_.fetch_add(1) + 1 == workers_.size()) {
        main_.exit();
      }
    });
  }
}

std::string Server::configDumpJson() const {
  nlohmann::json dump = {
      {"configs",
       nlohmann::json::array({{{"@type", "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"},
                               {"bootstrap", yamlToJson(bootstrap_.raw)}}})}};
  return dump.dump(2);
}

std::string Server::serverInfoJson() const {
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::steady_clock::now() - start_time_);
  nlohmann::json info = {
      {"version", CORRAL_VERSION},
      {"state", shutting_down_ ? "DRAINING" : "LIVE"},
      {"uptime_current_epoch", fmt::format("{}s", uptime.count())},
      {"uptime_all_epochs", fmt::format("{}s", uptime.count())},
      {"hot_restart_version", "disabled"},
      {"node", {{"id", bootstrap_.node_id}, {"cluster", bootstrap_.node_cluster}}},
      {"command_line_options",
       {{"config_path", options_.config_path},
        {"concurrency", options_.concurrency},
        {"log_level", options_.log_level},
        {"drain_time", fmt::format("{}s", options_.drain_time.count())}}}};
  return info.dump(2);
}

std::string Server::listenersText(bool json) const {
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& l : listeners_) {
      const size_t colon = l.address.rfind(':');
      arr.push_back({{"name", l.name},
                     {"local_address",
                      {{"socket_address",
                        {{"address", l.address.substr(0, colon)},
                         {"port_value", std::stoi(l.address.substr(colon + 1))}}}}}});
    }
    return nlohmann::json{{"listener_statuses", arr}}.dump(2);
  }
  std::string out;
  for (const auto& l : listeners_) {
    out += fmt::format("{}::{}\n", l.name, l.address);
  }
  return out;
}

admin::AdminResponse Server::handle(std::string_view method, std::string_view path,
                                    std::string_view query) {
  auto needsPost = [&](std::string_view p) { return path == p && method != "POST"; };
  if (needsPost("/healthcheck/fail") || needsPost("/healthcheck/ok") ||
      needsPost("/quitquitquit")) {
    return {405, "text/plain", "This endpoint needs POST\n"};
  }
  if (path == "/ready") {
    const bool ready = !shutting_down_ && !health_check_failed_;
    return {ready ? 200u : 503u, "text/plain; charset=UTF-8",
            shutting_down_ || health_check_failed_ ? "DRAINING\n" : "LIVE\n"};
  }
  if (sandboxes_ && (path == "/stats" || path == "/stats/prometheus")) {
    sandboxes_->poll();  // the sandboxed plugins' stats sent so far
  }
  if (path == "/stats") {
    if (query.find("format=prometheus") != std::string_view::npos) {
      return {200, "text/plain; version=0.0.4", stats_.renderPrometheus()};
    }
    if (query.find("format=json") != std::string_view::npos) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& [name, value] : stats_.snapshot()) {
        arr.push_back({{"name", name}, {"value", value}});
      }
      return {200, "application/json", nlohmann::json{{"stats", arr}}.dump(2)};
    }
    return {200, "text/plain; charset=UTF-8", stats_.renderText()};
  }
  if (path == "/stats/prometheus") {
    return {200, "text/plain; version=0.0.4", stats_.renderPrometheus()};
  }
  if (path == "/config_dump") {
    return {200, "application/json", configDumpJson()};
  }
  if (path == "/server_info") {
    return {200, "application/json", serverInfoJson()};
  }
  if (path == "/golang/sandboxes") {
    return {200, "application/json",
            sandboxes_ ? sandboxes_->json() : std::string("{\n  \"libraries\": []\n}")};
  }
  if (path == "/listeners") {
    const bool json = query.find("format=json") != std::string_view::npos;
    return {200, json ? "application/json" : "text/plain; charset=UTF-8", listenersText(json)};
  }
  if (path == "/healthcheck/fail") {
    health_check_failed_ = true;
    return {200, "text/plain; charset=UTF-8", "OK\n"};
  }
  if (path == "/healthcheck/ok") {
    health_check_failed_ = false;
    return {200, "text/plain; charset=UTF-8", "OK\n"};
  }
  if (path == "/quitquitquit") {
    // Like Envoy: exit cleanly now, without a drain period. Posted so this reply goes out.
    main_.post([this] { shutdown(false); });
    return {200, "text/plain; charset=UTF-8", "OK\n"};
  }
  if (path == "/" || path == "/help") {
    return {200, "text/plain; charset=UTF-8",
            "admin commands are:\n"
            "  /config_dump: dump current corral configs\n"
            "  /healthcheck/fail (POST): cause the server to fail health checks\n"
            "  /healthcheck/ok (POST): cause the server to pass health checks\n"
            "  /listeners: print listener info (?format=json)\n"
            "  /quitquitquit (POST): exit the server\n"
            "  /ready: print server state, return 200 if LIVE, otherwise return 503\n"
            "  /server_info: print server version/status information\n"
            "  /stats: print server stats (?format=json|prometheus)\n"
            "  /stats/prometheus: print server stats in prometheus format\n"};
  }
  return {404, "text/plain; charset=UTF-8", "invalid path. admin commands are listed at /help\n"};
}

}  // namespace corral::server
