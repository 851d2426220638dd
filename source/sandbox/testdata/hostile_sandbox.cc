// A sandbox process that breaks the protocol on purpose, for the proxy's tests: it answers Setup
// and the heartbeat like corral-sandbox, but answers a stream's first event with what
// HOSTILE_MODE (from the library's `env`) names. The proxy must kill it, fail the stream and
// carry on.
//
//   garbage       an action whose payload is random bytes
//   unknown-type  a message type no version defines
//   wrong-stream  an action for a stream the proxy never opened
//   bad-header    PassHeaders with a CR/LF header value
//   scribble      random bytes over the ring's shared positions
//   huge-stats    a StatsUpdate claiming a million entries
//   lying-reply   a local reply whose content-length is not its body's (well-formed otherwise)

#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "source/http/header_map.h"
#include "source/sandbox/channel.h"
#include "source/sandbox/protocol.h"
#include "source/sandbox/wire.h"

using namespace corral::sandbox;

namespace {

void waitFor(RingReader& in, Message* m) {
  while (in.read(m) != RingReader::Result::Message) {
    pollfd p{in.wakeFd(), POLLIN, 0};
    if (!in.prepareToWait(100)) {
      ::poll(&p, 1, 100);
    }
    in.doneWaiting();
  }
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t workers = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--workers") == 0) {
      workers = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    }
  }
  const char* env = std::getenv("HOSTILE_MODE");
  const std::string mode = env != nullptr ? env : "garbage";
  auto control = Channel::attach(kChannelMemfd, kToSandboxEventfd, kToProxyEventfd);
  if (!control.ok() || workers == 0) {
    return 2;
  }
  auto data =
      Channel::attach(kFirstDataChannelFd, kFirstDataChannelFd + 1, kFirstDataChannelFd + 2);
  if (!data.ok()) {
    return 2;
  }
  RingReader cin = (*control)->sandboxReader(4 << 20);
  RingWriter cout = (*control)->sandboxWriter();
  Message m;
  waitFor(cin, &m);  // Setup
  cout.write(static_cast<uint32_t>(MessageType::Ready), "");
  RingReader in = (*data)->sandboxReader(1 << 20);
  RingWriter out = (*data)->sandboxWriter();
  std::mt19937_64 rng(42);
  for (;;) {
    // Heartbeats keep it alive until the proxy decides otherwise.
    Message c;
    while (cin.read(&c) == RingReader::Result::Message) {
      if (c.type == static_cast<uint32_t>(MessageType::Ping)) {
        cout.write(static_cast<uint32_t>(MessageType::Pong), "hostile");
      }
    }
    if (in.read(&m) != RingReader::Result::Message) {
      ::usleep(1000);
      continue;
    }
    if (m.type != static_cast<uint32_t>(MessageType::StreamStart)) {
      continue;
    }
    WireReader r(m.payload);
    const uint64_t id = r.u64();
    std::string p;
    WireWriter w(p);
    if (mode == "garbage") {
      w.u64(id);
      for (int i = 0; i < 64; ++i) {
        p.push_back(static_cast<char>(rng()));
      }
      out.write(static_cast<uint32_t>(MessageType::PassHeaders), p);
    } else if (mode == "unknown-type") {
      w.u64(id);
      out.write(999, p);
    } else if (mode == "wrong-stream") {
      w.u64(id + 1000);
      w.u8(0);
      out.write(static_cast<uint32_t>(MessageType::Idle), p);
    } else if (mode == "bad-header") {
      corral::http::HeaderMap h;
      h.add(":method", "GET");
      h.add(":path", "/");
      h.add("x-evil", "a\r\nx-injected: yes");
      w.u64(id);
      w.u8(0);
      w.u8(0);  // changed: here they come
      w.headers(h);
      w.u8(1);
      out.write(static_cast<uint32_t>(MessageType::PassHeaders), p);
    } else if (mode == "scribble") {
      char* base = (*data)->mappingForTest();
      for (size_t i = 0; i < 4096; i += 8) {
        const uint64_t v = rng();
        std::memcpy(base + i, &v, sizeof v);
      }
      out.write(static_cast<uint32_t>(MessageType::Idle), p);
    } else if (mode == "lying-reply") {
      corral::http::HeaderMap h;
      h.add("content-length", "5");
      h.add("x-lie", "yes");
      w.u64(id);
      w.u32(200);
      w.headers(h);
      w.bytes(std::string(100, 'x'));
      w.bytes("lying");
      out.write(static_cast<uint32_t>(MessageType::LocalReply), p);
    } else if (mode == "huge-stats") {
      w.u32(1000000);
      cout.write(static_cast<uint32_t>(MessageType::StatsUpdate), p);
    }
  }
}
