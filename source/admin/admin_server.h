#pragma once
// The admin HTTP endpoint (Envoy's paths): /ready, /stats, /stats/prometheus, /config_dump,
// /server_info, /listeners, POST /healthcheck/fail|ok, POST /quitquitquit. Runs on the main
// thread's event loop; the handlers it calls run there too.

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "source/event/dispatcher.h"
#include "source/http/header_map.h"

struct evconnlistener;
struct sockaddr;

namespace corral::admin {

struct AdminResponse {
  uint32_t status = 200;
  std::string content_type = "text/plain; charset=UTF-8";
  std::string body;
};

// What the admin endpoint asks of the server.
class AdminHandler {
public:
  virtual ~AdminHandler() = default;
  // method: "GET"/"POST"...; path without the query; query: after '?', may be empty.
  virtual AdminResponse handle(std::string_view method, std::string_view path,
                               std::string_view query) = 0;
};

class AdminServer {
public:
  AdminServer(event::Dispatcher& dispatcher, AdminHandler& handler);
  ~AdminServer();
  // Binds and listens; returns the bound "ip:port".
  absl::StatusOr<std::string> listen(const std::string& address, uint32_t port);

private:
  class Connection;
  static void onAccept(evconnlistener* l, int fd, ::sockaddr* addr, int len, void* arg);
  void remove(Connection* c);

  event::Dispatcher& dispatcher_;
  AdminHandler& handler_;
  evconnlistener* listener_ = nullptr;
  std::set<Connection*> connections_;
};

}  // namespace corral::admin
