#pragma once
// A worker thread: its own event loop, its own listening sockets (SO_REUSEPORT, one per
// listener), its downstream connections and its upstream pools. The main thread talks to it
// only through posts. Nothing here is shared with other workers except read-only config and
// the stats store.

#include <atomic>
#include <functional>
#include <unordered_map>
#include <memory>
#include <thread>
#include <vector>

#include "source/event/dispatcher.h"
#include "source/http/conn_manager.h"
#include "source/upstream/cluster_manager.h"

struct evconnlistener;
struct sockaddr;

namespace corral::server {

struct ListenerSocket {
  int fd;
  http::ConnectionManagerConfigSharedPtr config;
};

class Worker : public http::ConnectionOwner {
public:
  Worker(size_t index, const upstream::ClusterManager& cm, std::vector<ListenerSocket> sockets);
  ~Worker() override;

  void start();
  // Stops accepting, closes idle connections, closes the rest after their current response;
  // `on_empty` runs on the worker thread once no connection is left. Any thread.
  void drain(std::function<void()> on_empty);
  // Ends the loop (after drain or at once) and joins the thread. Main thread.
  void stop();
  size_t connectionCount() const { return connection_count_.load(std::memory_order_relaxed); }

  // ConnectionOwner
  event::Dispatcher& dispatcher() override { return dispatcher_; }
  bool draining() const override { return draining_; }
  void onConnectionClosed(http::ServerConnection& connection) override;

private:
  static void onAccept(evconnlistener* listener, int fd, sockaddr* addr, int len, void* arg);
  // accept() failed (out of fds or memory): stop accepting briefly instead of spinning on a
  // listening socket that stays readable.
  static void onAcceptError(evconnlistener* listener, void* arg);
  void threadRun();
  void closeListeners();
  void checkDrained();

  struct Accepting {
    Worker* worker;
    evconnlistener* listener;
    http::ConnectionManagerConfigSharedPtr config;
    event::TimerPtr resume;
  };

  size_t index_;
  const upstream::ClusterManager& cm_;
  std::vector<ListenerSocket> sockets_;
  event::Dispatcher dispatcher_;
  std::unique_ptr<upstream::ThreadLocalClusterManager> tlcm_;
  std::vector<std::unique_ptr<Accepting>> listeners_;
  std::unordered_map<http::ServerConnection*, std::unique_ptr<http::ServerConnection>> connections_;
  std::atomic<size_t> connection_count_{0};
  std::function<void()> on_drained_;
  bool draining_ = false;
  std::thread thread_;
};

// "ip:port" for an IPv4/IPv6 socket address.
std::string addressToString(const sockaddr* addr);

}  // namespace corral::server
