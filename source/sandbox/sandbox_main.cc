// corral-sandbox: the process the sandbox mode runs a Go plugin library in. Started by the
// supervisor (launcher.h) with the channel on fds 3-5 and the library on fd 6. So far it loads
// the library (running the plugin's Go init), says Ready (or LoadFailed with the reason), and
// answers the control messages of protocol.h; the Golang filter's events come with issue 4.
//
// Usage: corral-sandbox --name <library path, for messages> [--log-level LEVEL]
//                       [--seccomp default|off]

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/golang/go_library.h"
#include "source/sandbox/channel.h"
#include "source/sandbox/protocol.h"
#include "source/sandbox/seccomp_policy.h"

extern char** environ;

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer stops the world with ptrace, which the seccomp policy refuses; in the sanitizer
// build the sandbox process keeps ASan's other checks but not the leak check at exit.
extern "C" const char* __lsan_default_options() {
  return "detect_leaks=0";
}
#endif

namespace {

using corral::sandbox::Channel;
using corral::sandbox::Message;
using corral::sandbox::MessageType;
using corral::sandbox::RingReader;
using corral::sandbox::RingWriter;

// "fd:target;..." for every open fd (the directory's own fd left out).
std::string openFds() {
  std::string out;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) {
    return out;
  }
  const int own = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == own) {
      continue;
    }
    char target[256] = {};
    const ssize_t n = ::readlinkat(own, e->d_name, target, sizeof(target) - 1);
    out += fmt::format("{}{}:{}", out.empty() ? "" : ";", e->d_name,
                       std::string_view(target, n > 0 ? static_cast<size_t>(n) : 0));
  }
  ::closedir(d);
  return out;
}

// The "Seccomp:" mode from /proc/self/status (2 = filter installed).
std::string seccompMode() {
  FILE* f = std::fopen("/proc/self/status", "r");
  std::string mode = "?";
  if (f == nullptr) {
    return mode;
  }
  char line[256];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "Seccomp:", 8) == 0) {
      mode = std::to_string(std::atoi(line + 8));
      break;
    }
  }
  std::fclose(f);
  return mode;
}

void send(RingWriter& out, MessageType type, const std::string& text) {
  while (out.write(static_cast<uint32_t>(type), text) == RingWriter::Result::Full) {
    ::usleep(100);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = "plugin library";
  bool seccomp = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--name") {
      name = argv[i + 1];
    } else if (flag == "--seccomp") {
      seccomp = std::string(argv[i + 1]) != "off";
    } else if (flag == "--log-level") {
      corral::Logger::setLevel(argv[i + 1]);
    }
  }
  auto channel = Channel::attach(corral::sandbox::kChannelMemfd, corral::sandbox::kToSandboxEventfd,
                                 corral::sandbox::kToProxyEventfd);
  if (!channel.ok()) {
    std::fprintf(stderr, "corral-sandbox: %s\n", std::string(channel.status().message()).c_str());
    return 2;
  }
  RingReader in = (*channel)->sandboxReader(1 << 20);
  RingWriter out = (*channel)->sandboxWriter();
  // The syscall policy goes on before any plugin code runs (its Go init runs inside dlopen).
  if (seccomp) {
    auto status = corral::sandbox::installSandboxSeccomp();
    if (!status.ok()) {
      send(out, MessageType::LoadFailed, std::string(status.message()));
      return 2;
    }
  }
  // The supervisor opened the library; we load it through our fd (we may not reach its path).
  auto library = corral::golang::GoLibrary::load(
      fmt::format("/proc/self/fd/{}", corral::sandbox::kLibraryFd), name);
  if (!library.ok()) {
    send(out, MessageType::LoadFailed, std::string(library.status().message()));
    return 2;
  }
  send(out, MessageType::Ready, "");
  for (;;) {
    Message m;
    const auto res = in.read(&m);
    if (res == RingReader::Result::Corrupt) {
      return 3;  // the proxy would never do this: stop
    }
    if (res == RingReader::Result::Empty) {
      if (!in.prepareToWait()) {
        pollfd p{in.wakeFd(), POLLIN, 0};
        ::poll(&p, 1, 1000);
      }
      in.doneWaiting();
      continue;
    }
    switch (static_cast<MessageType>(m.type)) {
    case MessageType::Shutdown:
      return 0;
    case MessageType::Ping: {
      int env = 0;
      for (char** e = environ; *e != nullptr; ++e) {
        ++env;
      }
      send(out, MessageType::Pong,
           fmt::format("pid={} uid={} env={} seccomp={} fds={}", ::getpid(), ::getuid(), env,
                       seccompMode(), openFds()));
      break;
    }
    default:
      return 3;  // unknown message: the versions disagree
    }
  }
}
