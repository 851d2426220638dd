#pragma once
// An upstream endpoint: a resolved socket address. Immutable and shared by all workers.

#include <sys/socket.h>

#include <memory>
#include <string>

namespace corral::upstream {

struct Host {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string address;  // "ip:port", for logs and %UPSTREAM_HOST%
};
using HostConstSharedPtr = std::shared_ptr<const Host>;

}  // namespace corral::upstream
