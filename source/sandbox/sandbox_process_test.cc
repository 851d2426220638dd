// The real sandbox process, started by the real launcher: what it runs with, how it ends.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "source/sandbox/channel.h"
#include "source/sandbox/launcher.h"
#include "source/sandbox/output_capture.h"
#include "source/sandbox/protocol.h"

namespace corral::sandbox {
namespace {

// Waits for one message (up to 10 s).
bool receive(RingReader& in, Message* m) {
  for (int i = 0; i < 10000; ++i) {
    const auto res = in.read(m);
    if (res == RingReader::Result::Message) {
      return true;
    }
    if (res == RingReader::Result::Corrupt) {
      return false;
    }
    if (!in.prepareToWait()) {
      pollfd p{in.wakeFd(), POLLIN, 0};
      ::poll(&p, 1, 1);
    }
    in.doneWaiting();
  }
  return false;
}

bool waitExit(int pidfd, int timeout_ms) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

class SandboxProcessTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto ch = Channel::create(1 << 16);
    ASSERT_TRUE(ch.ok());
    channel_ = std::move(*ch);
    library_fd_ = ::open(CORRAL_TEST_PLUGINS_SO, O_RDONLY | O_CLOEXEC);
    ASSERT_GE(library_fd_, 0);
  }
  void TearDown() override { ::close(library_fd_); }

  SpawnSpec spec(const std::string& name = "test-plugins") {
    SpawnSpec s;
    s.path = CORRAL_SANDBOX_BIN;
    s.args = {"--name", name, "--log-level", "warning"};
    s.env = {"CORRAL_SANDBOX_TEST=1"};
    s.channel_fds[0] = channel_->memfd();
    s.channel_fds[1] = channel_->toSandboxEventfd();
    s.channel_fds[2] = channel_->toProxyEventfd();
    s.extra_fds = {library_fd_};
    s.run_as = 65534;
    return s;
  }

  // Runs `library` in a sandbox until it dies (by itself, within 30 s); its exit and output.
  struct Outcome {
    ExitInfo exit;
    std::string output;
    std::string failure_line;
  };
  std::optional<Outcome> runToDeath(const char* library, std::optional<uint64_t> data_limit = {}) {
    ::close(library_fd_);
    library_fd_ = ::open(library, O_RDONLY | O_CLOEXEC);
    int out[2];
    if (library_fd_ < 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      return std::nullopt;
    }
    SpawnSpec s = spec(library);
    s.output_fd = out[1];
    s.data_limit_bytes = data_limit;
    auto p = launcher_.spawn(s);
    ::close(out[1]);
    OutputCapture capture(out[0]);
    if (!p.ok() || !waitExit(p->pidfd, 30000)) {
      return std::nullopt;
    }
    ::close(p->pidfd);
    auto info = launcher_.reap(p->pid);
    if (!info) {
      return std::nullopt;
    }
    Outcome o{*info, "", ""};
    for (const auto& line : capture.drain()) {
      o.output += line + "\n";
    }
    o.failure_line = capture.failureLine();
    return o;
  }

  // Every process waits for its Setup before it says Ready.
  static RingWriter::Result sendSetup(RingWriter& out) {
    return out.write(static_cast<uint32_t>(MessageType::Setup), emptySetup());
  }

  std::unique_ptr<Channel> channel_;
  int library_fd_ = -1;
  PosixLauncher launcher_;
};

TEST_F(SandboxProcessTest, RunsCleanUnprivilegedAndAnswers) {
  // A descriptor the proxy has open without close-on-exec must not reach the sandbox.
  const int leaky = ::open("/dev/null", O_RDONLY);
  auto p = launcher_.spawn(spec());
  ::close(leaky);
  ASSERT_TRUE(p.ok()) << p.status();
  RingReader in = channel_->proxyReader(1 << 20);
  RingWriter out = channel_->proxyWriter();
  ASSERT_EQ(sendSetup(out), RingWriter::Result::Ok);
  Message m;
  ASSERT_TRUE(receive(in, &m));
  ASSERT_EQ(m.type, static_cast<uint32_t>(MessageType::Ready)) << m.payload;
  ASSERT_EQ(out.write(static_cast<uint32_t>(MessageType::Ping), ""), RingWriter::Result::Ok);
  ASSERT_TRUE(receive(in, &m));
  ASSERT_EQ(m.type, static_cast<uint32_t>(MessageType::Pong));
  std::map<std::string, std::string> kv;
  for (auto part : absl::StrSplit(m.payload, ' ')) {
    std::pair<std::string, std::string> p2 = absl::StrSplit(part, absl::MaxSplits('=', 1));
    kv[p2.first] = p2.second;
  }
  EXPECT_EQ(kv["pid"], std::to_string(p->pid));
  if (::geteuid() == 0) {
    EXPECT_EQ(kv["uid"], "65534");
  }
  EXPECT_EQ(kv["env"], "1");      // only what the spec lists
  EXPECT_EQ(kv["seccomp"], "2");  // the syscall filter is on (and the Go runtime runs under it)
  // fds: stdio, the channel (3-5), the library (6); anything else only the Go runtime's own.
  for (auto entry : absl::StrSplit(kv["fds"], ';')) {
    std::pair<std::string, std::string> fd = absl::StrSplit(entry, absl::MaxSplits(':', 1));
    const int n = std::atoi(fd.first.c_str());
    if (n > 6) {
      EXPECT_EQ(fd.second.rfind("anon_inode:", 0), 0u) << entry << " leaked into the sandbox";
    }
    if (n == 6) {
      EXPECT_NE(fd.second.find("corral_test_plugins.so"), std::string::npos) << entry;
    }
  }
  ASSERT_EQ(out.write(static_cast<uint32_t>(MessageType::Shutdown), ""), RingWriter::Result::Ok);
  ASSERT_TRUE(waitExit(p->pidfd, 10000));
  auto info = launcher_.reap(p->pid);
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->signaled);
  EXPECT_EQ(info->code, 0);
  ::close(p->pidfd);
}

TEST_F(SandboxProcessTest, KilledProcessIsSeenThroughItsPidfd) {
  auto p = launcher_.spawn(spec());
  ASSERT_TRUE(p.ok()) << p.status();
  RingReader in = channel_->proxyReader(1 << 20);
  RingWriter out = channel_->proxyWriter();
  ASSERT_EQ(sendSetup(out), RingWriter::Result::Ok);
  Message m;
  ASSERT_TRUE(receive(in, &m));
  EXPECT_FALSE(launcher_.reap(p->pid));  // still running
  launcher_.kill(p->pid, SIGKILL);
  ASSERT_TRUE(waitExit(p->pidfd, 10000));
  auto info = launcher_.reap(p->pid);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->signaled);
  EXPECT_EQ(info->code, SIGKILL);
  ::close(p->pidfd);
}

TEST_F(SandboxProcessTest, ALibraryThatIsNotAGoPluginIsReported) {
  ::close(library_fd_);
  library_fd_ = ::open("/bin/true", O_RDONLY | O_CLOEXEC);
  auto p = launcher_.spawn(spec("/bin/true"));
  ASSERT_TRUE(p.ok()) << p.status();
  RingReader in = channel_->proxyReader(1 << 20);
  Message m;
  ASSERT_TRUE(receive(in, &m));
  EXPECT_EQ(m.type, static_cast<uint32_t>(MessageType::LoadFailed));
  EXPECT_NE(m.payload.find("/bin/true"), std::string::npos) << m.payload;
  ASSERT_TRUE(waitExit(p->pidfd, 10000));
  auto info = launcher_.reap(p->pid);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->code, 2);
  ::close(p->pidfd);
}

// A plugin whose Go init panics: in-process that is the proxy's death (a c-shared Go runtime
// aborts on an unrecovered panic); here the sandbox process dies alone, and its crash output is
// kept, first line as the reason.
TEST_F(SandboxProcessTest, CrashOnLoadIsContainedAndItsTracebackKept) {
  auto o = runToDeath(CORRAL_CRASH_ON_LOAD_SO);
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->exit.signaled);
  EXPECT_EQ(o->exit.code, SIGABRT);
  EXPECT_EQ(o->failure_line, "panic: crash on load") << o->output;
  EXPECT_NE(o->output.find("goroutine 1"), std::string::npos) << o->output;  // the traceback
}

// A plugin that allocates 2 GiB while loading, under a 512 MiB data limit: the Go runtime runs
// out of memory in its own process, which dies alone.
TEST_F(SandboxProcessTest, AllocationPastTheDataLimitKillsOnlyTheSandbox) {
  auto o = runToDeath(CORRAL_ALLOC_ON_LOAD_SO, 512ull << 20);
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->exit.signaled || o->exit.code != 0);
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer the limit cannot be used at all: ASan's shadow reservation counts
  // against RLIMIT_DATA, so the process dies before main. Still contained and still reported.
  EXPECT_NE(o->output.find("ReserveShadowMemoryRange failed"), std::string::npos) << o->output;
#else
  EXPECT_NE(o->output.find("out of memory"), std::string::npos) << o->output.substr(0, 2000);
  EXPECT_EQ(o->failure_line.rfind("fatal error: ", 0), 0u) << o->failure_line;
#endif
}

TEST_F(SandboxProcessTest, MissingExecutableIsAnErrorNotAChild) {
  SpawnSpec s = spec();
  s.path = "/nonexistent/corral-sandbox";
  auto p = launcher_.spawn(s);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("execve"), std::string::npos) << p.status();
}

// The sandbox dies with its parent (PR_SET_PDEATHSIG): a middle process starts it and exits.
TEST_F(SandboxProcessTest, DiesWithItsParent) {
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    auto p = launcher_.spawn(spec());
    const pid_t pid = p.ok() ? p->pid : -1;
    [[maybe_unused]] ssize_t n = ::write(pipefd[1], &pid, sizeof(pid));
    ::_exit(0);  // the sandbox is orphaned
  }
  ::close(pipefd[1]);
  pid_t sandbox = -1;
  ASSERT_EQ(::read(pipefd[0], &sandbox, sizeof(sandbox)), static_cast<ssize_t>(sizeof(sandbox)));
  ::close(pipefd[0]);
  ASSERT_GT(sandbox, 0);
  const int pidfd = openPidfd(sandbox);
  int status;
  ASSERT_EQ(::waitpid(middle, &status, 0), middle);
  if (pidfd >= 0) {  // (already gone and reaped by init if this failed)
    EXPECT_TRUE(waitExit(pidfd, 10000)) << "the sandbox outlived its parent";
    ::close(pidfd);
  }
}

}  // namespace
}  // namespace corral::sandbox
