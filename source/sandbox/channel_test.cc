#include "source/sandbox/channel.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace corral::sandbox {
namespace {

constexpr uint32_t kMax = 1 << 20;

std::unique_ptr<Channel> makeChannel(uint32_t capacity = 4096) {
  auto c = Channel::create(capacity);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

TEST(ChannelTest, RoundTripInOrder) {
  auto ch = makeChannel();
  RingWriter w = ch->proxyWriter();
  RingReader r = ch->sandboxReader(kMax);
  ASSERT_EQ(w.write(1, "hello"), RingWriter::Result::Ok);
  ASSERT_EQ(w.write(2, ""), RingWriter::Result::Ok);
  ASSERT_EQ(w.write(3, std::string(100, 'x')), RingWriter::Result::Ok);
  Message m;
  ASSERT_EQ(r.read(&m), RingReader::Result::Message);
  EXPECT_EQ(m.type, 1u);
  EXPECT_EQ(m.payload, "hello");
  ASSERT_EQ(r.read(&m), RingReader::Result::Message);
  EXPECT_EQ(m.type, 2u);
  EXPECT_EQ(m.payload, "");
  ASSERT_EQ(r.read(&m), RingReader::Result::Message);
  EXPECT_EQ(m.payload, std::string(100, 'x'));
  EXPECT_EQ(r.read(&m), RingReader::Result::Empty);
}

TEST(ChannelTest, WrapsAroundManyTimesWithoutLosingBytes) {
  auto ch = makeChannel(4096);
  RingWriter w = ch->sandboxWriter();
  RingReader r = ch->proxyReader(kMax);
  std::mt19937 rng(7);
  uint64_t sent = 0, got = 0;
  std::string expected;
  for (int round = 0; round < 2000; ++round) {
    const size_t len = rng() % 700;
    std::string payload(len, '\0');
    for (auto& c : payload) {
      c = static_cast<char>(rng());
    }
    while (w.write(static_cast<uint32_t>(sent), payload) == RingWriter::Result::Full) {
      Message m;
      ASSERT_EQ(r.read(&m), RingReader::Result::Message);
      ++got;
    }
    ++sent;
    // Check the most recent message end to end every few rounds.
    if (round % 10 == 0) {
      Message m;
      while (got < sent) {
        ASSERT_EQ(r.read(&m), RingReader::Result::Message);
        EXPECT_EQ(m.type, static_cast<uint32_t>(got));
        ++got;
      }
      EXPECT_EQ(m.payload, payload);
    }
  }
}

TEST(ChannelTest, FullThenSpaceAgainAndTooLarge) {
  auto ch = makeChannel(4096);
  RingWriter w = ch->proxyWriter();
  RingReader r = ch->sandboxReader(kMax);
  const std::string chunk(1000, 'a');
  int written = 0;
  while (w.write(9, chunk) == RingWriter::Result::Ok) {
    ++written;
  }
  EXPECT_EQ(written, 4);  // 4 x (8 + 1000) fits in 4096; a fifth does not
  EXPECT_EQ(w.write(9, chunk), RingWriter::Result::Full);
  Message m;
  ASSERT_EQ(r.read(&m), RingReader::Result::Message);
  EXPECT_EQ(w.write(9, chunk), RingWriter::Result::Ok);
  EXPECT_EQ(w.write(9, std::string(5000, 'b')), RingWriter::Result::TooLarge);
}

TEST(ChannelTest, ReaderRefusesPayloadsAboveItsLimit) {
  auto ch = makeChannel();
  RingWriter w = ch->sandboxWriter();
  RingReader r = ch->proxyReader(/*max_payload=*/64);
  ASSERT_EQ(w.write(1, std::string(65, 'x')), RingWriter::Result::Ok);
  Message m;
  EXPECT_EQ(r.read(&m), RingReader::Result::Corrupt);
  EXPECT_TRUE(r.corrupt());
  EXPECT_EQ(r.read(&m), RingReader::Result::Corrupt);  // for good
}

// A hostile sandbox rewrites the positions it does not own.
TEST(ChannelTest, HostilePositionsMakeTheRingCorruptNotTheProcess) {
  auto ch = makeChannel();
  char* base = ch->mappingForTest();
  auto* ring1 = reinterpret_cast<RingControl*>(base + 64 + sizeof(RingControl));
  auto* ring0 = reinterpret_cast<RingControl*>(base + 64);

  RingReader r = ch->proxyReader(kMax);
  ring1->write_pos.store(1ull << 40);  // claims more than the ring holds
  Message m;
  EXPECT_EQ(r.read(&m), RingReader::Result::Corrupt);

  RingWriter w = ch->proxyWriter();
  ring0->read_pos.store(12345);  // the consumer "read" bytes never written
  EXPECT_EQ(w.write(1, "x"), RingWriter::Result::Corrupt);
}

TEST(ChannelTest, PartialOrOversizedMessageIsCorrupt) {
  auto ch = makeChannel();
  char* base = ch->mappingForTest();
  auto* ring1 = reinterpret_cast<RingControl*>(base + 64 + sizeof(RingControl));
  char* data1 = base + 64 + 2 * sizeof(RingControl) + ch->capacity();
  const uint32_t header[2] = {1, 4000};  // says 4000 bytes, publishes 16
  std::memcpy(data1, header, sizeof(header));
  ring1->write_pos.store(16);
  RingReader r = ch->proxyReader(kMax);
  Message m;
  EXPECT_EQ(r.read(&m), RingReader::Result::Corrupt);
}

// Whatever the shared memory holds, reading never crashes and never returns more than the limit.
TEST(ChannelTest, RandomGarbageIsAlwaysHandled) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 500; ++round) {
    auto ch = makeChannel();
    char* base = ch->mappingForTest();
    const size_t start = 64 + sizeof(RingControl);  // ring 1: control and data
    const size_t end = ch->mappingSize();
    for (size_t i = start; i < end; i += 8) {
      const uint64_t v = rng();
      std::memcpy(base + i, &v, end - i < 8 ? end - i : 8);
    }
    auto* ring1 = reinterpret_cast<RingControl*>(base + start);
    ring1->read_pos.store(0);
    ring1->write_pos.store(rng() % 6000);  // often plausible, sometimes not
    RingReader r = ch->proxyReader(512);
    Message m;
    for (int i = 0; i < 100; ++i) {
      const auto res = r.read(&m);
      if (res != RingReader::Result::Message) {
        break;
      }
      EXPECT_LE(m.payload.size(), 512u);
    }
  }
}

TEST(ChannelTest, TheMappingCannotBeShrunk) {
  auto ch = makeChannel();
  EXPECT_NE(::ftruncate(ch->memfd(), 0), 0);
}

TEST(ChannelTest, AttachValidatesTheHeader) {
  auto ch = makeChannel();
  auto ok = Channel::attach(::dup(ch->memfd()), ::dup(ch->toSandboxEventfd()),
                            ::dup(ch->toProxyEventfd()));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->capacity(), ch->capacity());
  std::memset(ch->mappingForTest(), 0, 8);  // magic gone
  const int fds[3] = {::dup(ch->memfd()), ::dup(ch->toSandboxEventfd()),
                      ::dup(ch->toProxyEventfd())};
  auto bad = Channel::attach(fds[0], fds[1], fds[2]);
  EXPECT_FALSE(bad.ok());
  for (int fd : fds) {
    ::close(fd);  // attach failed: the fds are still ours
  }
}

// Two processes: the child attaches to the inherited fds and echoes every message reversed,
// sleeping on its eventfd between messages; the parent waits on its own eventfd.
TEST(ChannelTest, EchoAcrossProcessesWithWakeups) {
  auto ch = makeChannel(1 << 16);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto child = Channel::attach(::dup(ch->memfd()), ::dup(ch->toSandboxEventfd()),
                                 ::dup(ch->toProxyEventfd()));
    if (!child.ok()) {
      ::_exit(2);
    }
    RingReader in = (*child)->sandboxReader(kMax);
    RingWriter out = (*child)->sandboxWriter();
    for (;;) {
      Message m;
      const auto res = in.read(&m);
      if (res == RingReader::Result::Corrupt) {
        ::_exit(3);
      }
      if (res == RingReader::Result::Empty) {
        if (!in.prepareToWait()) {
          pollfd p{in.wakeFd(), POLLIN, 0};
          ::poll(&p, 1, 5000);
        }
        in.doneWaiting();
        continue;
      }
      if (m.type == 0) {
        ::_exit(0);
      }
      std::string rev(m.payload.rbegin(), m.payload.rend());
      while (out.write(m.type, rev) == RingWriter::Result::Full) {
      }
    }
  }
  RingWriter out = ch->proxyWriter();
  RingReader in = ch->proxyReader(kMax);
  for (uint32_t i = 1; i <= 2000; ++i) {
    const std::string payload = "message-" + std::to_string(i);
    ASSERT_EQ(out.write(i, payload), RingWriter::Result::Ok);
    Message m;
    for (;;) {
      const auto res = in.read(&m);
      ASSERT_NE(res, RingReader::Result::Corrupt);
      if (res == RingReader::Result::Message) {
        break;
      }
      if (!in.prepareToWait()) {
        pollfd p{in.wakeFd(), POLLIN, 0};
        ASSERT_GT(::poll(&p, 1, 5000), 0) << "no answer from the child";
      }
      in.doneWaiting();
    }
    ASSERT_EQ(m.type, i);
    ASSERT_EQ(m.payload, std::string(payload.rbegin(), payload.rend()));
  }
  ASSERT_EQ(out.write(0, ""), RingWriter::Result::Ok);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);  // reaped
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace corral::sandbox
