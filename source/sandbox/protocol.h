#pragma once
// Message types on the sandbox channel (channel.h carries them; version 1). So far the control
// messages of the process itself; the Golang filter's events and actions come with issue 4.

#include <cstdint>

namespace corral::sandbox {

enum class MessageType : uint32_t {
  Shutdown = 0,    // proxy -> sandbox: exit 0
  Ping = 1,        // proxy -> sandbox: answer Pong (the heartbeat)
  Pong = 2,        // sandbox -> proxy: "pid=P uid=U env=N seccomp=M fds=fd:target;..."
  LoadFailed = 3,  // sandbox -> proxy: the library could not be loaded; the text says why
  Ready = 4,       // sandbox -> proxy: the library is loaded
};

// The fds a sandbox process finds: the channel (launcher.h) and the plugin library.
constexpr int kChannelMemfd = 3;
constexpr int kToSandboxEventfd = 4;
constexpr int kToProxyEventfd = 5;
constexpr int kLibraryFd = 6;

}  // namespace corral::sandbox
