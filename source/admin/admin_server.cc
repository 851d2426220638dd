#include "source/admin/admin_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/http/codec.h"

namespace corral::admin {

class AdminServer::Connection : public http::MessageCallbacks, public event::DeferredDeletable {
public:
  Connection(AdminServer& server, int fd)
      : server_(server),
        bev_(bufferevent_socket_new(server.dispatcher_.base(), fd, BEV_OPT_CLOSE_ON_FREE)),
        parser_(http::Parser::Type::Request, *this) {
    bufferevent_setcb(bev_, &Connection::onRead, &Connection::onWrite, &Connection::onEvent, this);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
  }
  ~Connection() override { bufferevent_free(bev_); }

  void onHeaders(http::HeaderMapPtr headers, bool) override { headers_ = std::move(headers); }
  void onBody(std::string_view) override {}
  void onTrailers(http::HeaderMapPtr) override {}
  void onMessageComplete() override {
    const std::string_view target = headers_->getView(":path");
    const size_t q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    AdminResponse r = server_.handler_.handle(headers_->getView(":method"), path, query);
    keep_alive_ = parser_.keepAlive();
    respond(r);
  }

private:
  static void onRead(bufferevent*, void* arg) { static_cast<Connection*>(arg)->process(); }
  static void onWrite(bufferevent*, void* arg) {
    auto* self = static_cast<Connection*>(arg);
    if (self->closing_) {
      self->close();
    }
  }
  static void onEvent(bufferevent*, short events, void* arg) {
    if ((events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0) {
      static_cast<Connection*>(arg)->close();
    }
  }

  void process() {
    evbuffer* in = bufferevent_get_input(bev_);
    while (!closing_ && !closed_ && evbuffer_get_length(in) > 0) {
      parser_.resume();
      evbuffer_iovec v;
      if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) {
        return;
      }
      auto r = parser_.feed(static_cast<const char*>(v.iov_base), v.iov_len);
      if (closed_) {
        return;
      }
      evbuffer_drain(in, r.consumed);
      if (r.error) {
        AdminResponse resp{r.error->status, "text/plain",
                           std::string(http::reasonPhrase(r.error->status))};
        keep_alive_ = false;
        respond(resp);
        return;
      }
      if (r.consumed == 0) {
        return;
      }
    }
  }

  void respond(const AdminResponse& r) {
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\ncache-control: no-cache, "
        "max-age=0\r\nx-content-type-options: nosniff\r\n{}\r\n",
        r.status, http::reasonPhrase(r.status), r.content_type, r.body.size(),
        keep_alive_ ? "" : "connection: close\r\n");
    out += r.body;
    bufferevent_write(bev_, out.data(), out.size());
    if (!keep_alive_) {
      closing_ = true;
      bufferevent_disable(bev_, EV_READ);
    }
  }

  void close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    bufferevent_disable(bev_, EV_READ | EV_WRITE);
    server_.remove(this);
  }

  AdminServer& server_;
  bufferevent* bev_;
  http::Parser parser_;
  http::HeaderMapPtr headers_;
  bool keep_alive_ = true;
  bool closing_ = false;
  bool closed_ = false;
};

AdminServer::AdminServer(event::Dispatcher& dispatcher, AdminHandler& handler)
    : dispatcher_(dispatcher), handler_(handler) {}

AdminServer::~AdminServer() {
  if (listener_ != nullptr) {
    evconnlistener_free(listener_);
  }
  for (Connection* c : connections_) {
    delete c;
  }
}

absl::StatusOr<std::string> AdminServer::listen(const std::string& address, uint32_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* res = nullptr;
  if (::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) {
    return absl::InvalidArgumentError(
        fmt::format("admin.address.socket_address.address: \"{}\" is not an IP address", address));
  }
  listener_ =
      evconnlistener_new_bind(dispatcher_.base(), &AdminServer::onAccept, this,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                              128, res->ai_addr, static_cast<int>(res->ai_addrlen));
  ::freeaddrinfo(res);
  if (listener_ == nullptr) {
    return absl::UnavailableError(fmt::format("admin.address: cannot listen on {}:{}: {}", address,
                                              port, std::strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&bound), &len);
  char ip[INET6_ADDRSTRLEN] = {0};
  uint16_t bound_port;
  if (bound.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&bound);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    bound_port = ntohs(in6->sin6_port);
    return fmt::format("[{}]:{}", ip, bound_port);
  }
  auto* in = reinterpret_cast<sockaddr_in*>(&bound);
  ::inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
  bound_port = ntohs(in->sin_port);
  return fmt::format("{}:{}", ip, bound_port);
}

void AdminServer::onAccept(evconnlistener*, int fd, ::sockaddr*, int, void* arg) {
  auto* self = static_cast<AdminServer*>(arg);
  self->connections_.insert(new Connection(*self, fd));
}

void AdminServer::remove(Connection* c) {
  if (connections_.erase(c) > 0) {
    dispatcher_.deferredDelete(std::unique_ptr<event::DeferredDeletable>(c));
  }
}

}  // namespace corral::admin
