// corral-sandbox: the process the sandbox mode runs a Go plugin library in. Started by the
// supervisor (launcher.h) with the control channel on fds 3-5, the library on fd 6 and one data
// channel per proxy worker from fd 7 on (protocol.h). It installs the syscall policy, loads the
// library (running the plugin's Go init), waits for Setup (the config: the plugin's Parse runs
// then), says Ready (or LoadFailed with the reason), answers the heartbeat, and serves the
// Golang filter's streams on the data channels (sandbox_host.h) — all on one event loop.
//
// Usage: corral-sandbox --name <library path> [--yaml-path <its YAML path>] [--workers N]
//                       [--log-level LEVEL] [--seccomp default|off]

#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "source/common/logger.h"
#include "source/golang/go_library.h"
#include "source/sandbox/channel.h"
#include "source/event/dispatcher.h"
#include "source/event/fd_watch.h"
#include "source/golang/golang_filter.h"
#include "source/sandbox/protocol.h"
#include "source/sandbox/sandbox_host.h"
#include "source/sandbox/wire.h"
#include "source/sandbox/seccomp_policy.h"

extern char** environ;

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer stops the world with ptrace, which the seccomp policy refuses; in the sanitizer
// build the sandbox process keeps ASan's other checks but not the leak check at exit.
extern "C" const char* __lsan_default_options() {
  return "detect_leaks=0";
}
// A fatal signal in a sandbox is the plugin's (a segfault in its cgo code): Go's runtime
// reports it, as in a normal build, rather than ASan's handler.
extern "C" const char* __asan_default_options() {
  return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0";
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

// The memory watch (sandbox_manager.cc says why): resident memory checked every few
// milliseconds; past the limit the process ends as Go does when the kernel refuses it memory,
// so it is reported the same way.
[[noreturn]] void watchMemory(uint64_t limit) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  for (;;) {
    ::usleep(5000);
    FILE* f = std::fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    const bool read = f != nullptr && std::fscanf(f, "%llu %llu", &size, &resident) == 2;
    if (f != nullptr) {
      std::fclose(f);
    }
    if (read && resident * page > limit) {
      std::fprintf(stderr,
                   "fatal error: runtime: out of memory (resident %llu MiB over "
                   "memory_limit_bytes %llu MiB)\n",
                   static_cast<unsigned long long>(resident * page >> 20),
                   static_cast<unsigned long long>(limit >> 20));
      std::_Exit(2);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = "plugin library";
  bool seccomp = true;
  uint32_t workers = 0;
  std::string yaml_path;  // of library_path, for messages
  uint64_t watchdog_bytes = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--name") {
      name = argv[i + 1];
    } else if (flag == "--seccomp") {
      seccomp = std::string(argv[i + 1]) != "off";
    } else if (flag == "--memory-watchdog") {
      watchdog_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (flag == "--yaml-path") {
      yaml_path = argv[i + 1];
    } else if (flag == "--workers") {
      workers = static_cast<uint32_t>(std::atoi(argv[i + 1]));
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
  std::vector<std::unique_ptr<Channel>> data;
  for (uint32_t w = 0; w < workers; ++w) {
    const int fd = corral::sandbox::kFirstDataChannelFd + 3 * static_cast<int>(w);
    auto c = Channel::attach(fd, fd + 1, fd + 2);
    if (!c.ok()) {
      std::fprintf(stderr, "corral-sandbox: data channel %u: %s\n", w,
                   std::string(c.status().message()).c_str());
      return 2;
    }
    data.push_back(std::move(*c));
  }
  if (watchdog_bytes > 0) {
    std::thread(watchMemory, watchdog_bytes).detach();
  }
  RingReader in = (*channel)->sandboxReader(4 << 20);
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
  const std::string fd_path = fmt::format("/proc/self/fd/{}", corral::sandbox::kLibraryFd);
  auto library = corral::golang::GoLibrary::load(fd_path, yaml_path.empty() ? name : yaml_path);
  if (!library.ok()) {
    // Said of the library as the config names it, not of our fd.
    std::string message(library.status().message());
    for (size_t at; (at = message.find(fd_path)) != std::string::npos;) {
      message.replace(at, fd_path.size(), name);
    }
    send(out, MessageType::LoadFailed, message);
    return 2;
  }
  // A c-shared Go library runs its init on a thread of its own; the first call into Go waits
  // for it. Make that call now, so a plugin that dies in init never says Ready (a GC on a fresh
  // heap costs next to nothing; the SDK logs "enforcing GC" for it — not muted, as the plugin's
  // own init logs come out during this very call).
  (*library)->exports().clean_up();
  corral::event::Dispatcher loop;
  std::unique_ptr<corral::sandbox::SandboxHost> host;
  int exit_code = 0;
  auto onControl = [&] {
    do {
      in.doneWaiting();
      Message m;
      RingReader::Result res;
      while ((res = in.read(&m)) == RingReader::Result::Message) {
        switch (static_cast<MessageType>(m.type)) {
        case MessageType::Shutdown:
          loop.exit();
          return;
        case MessageType::Setup: {
          corral::sandbox::WireReader r(m.payload);
          const std::string library_id(r.bytes());
          const uint32_t concurrency = r.u32();
          const std::string yaml(r.bytes());
          if (!r.done() || host != nullptr) {
            exit_code = 3;
            loop.exit();
            return;
          }
          corral::golang::libraries().adopt(library_id, *library);
          auto created = corral::sandbox::SandboxHost::create(
              loop, library_id, concurrency, yaml,
              [&out](std::string stats) { send(out, MessageType::StatsUpdate, stats); });
          if (!created.ok()) {
            send(out, MessageType::LoadFailed, std::string(created.status().message()));
            exit_code = 2;
            loop.exit();
            return;
          }
          host = std::move(*created);
          for (auto& c : data) {
            host->serve(std::move(c));
          }
          send(out, MessageType::Ready, "");
          break;
        }
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
          res = RingReader::Result::Corrupt;  // unknown message: the versions disagree
          break;
        }
        if (res == RingReader::Result::Corrupt) {
          break;
        }
      }
      if (res == RingReader::Result::Corrupt) {
        exit_code = 3;  // the proxy would never do this: stop
        loop.exit();
        return;
      }
    } while (in.prepareToWait());
  };
  in.prepareToWait(0);
  corral::event::FdWatch control(loop, in.wakeFd(), true, onControl);
  onControl();  // Setup may be there already
  loop.run();
  if (host != nullptr) {
    host->stop();
  }
  loop.clearDeferredDeleteList();
  return exit_code;
}
